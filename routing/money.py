"""Which currency an amount is in: the ISO 4217 codes a deal can be priced in, and how an amount
is written with its code wherever people read one (the report's table, the dashboard, Slack).

leadrouter never converts: with `LEADROUTER_CURRENCY` set, an amount in another currency is left
out of the sums and counted (`bot.service.outcomes`); unset, every amount is taken to be in the
one currency the operator says they all are in, and is written as a plain number.
"""

from __future__ import annotations

from decimal import Decimal

# The active codes of ISO 4217 for money (no precious metals, fund or accounting units, nor the
# codes kept for testing and for "no currency": no deal is priced in those).
_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
CURRENCIES = frozenset(_CODES.split())


def currency_code(text: str) -> str | None:
    """`text` as an ISO 4217 code (surrounding blanks and case forgiven); None if it is none."""
    code = text.strip().upper()
    return code if code in CURRENCIES else None


def same_currency(given: str | None, ours: str | None) -> bool:
    """Whether an amount said to be in `given` may be counted with ours: yes when either is not
    known (a CRM with one currency names none; unset, ours is whatever the operator says)."""
    return given is None or ours is None or given.strip().upper() == ours


def with_currency(amount: Decimal, currency: str | None) -> str:
    """An amount as people read it: `12,000.50 USD`, or `12,000.50` with no currency set."""
    written = f"{amount:,.2f}"
    return f"{written} {currency}" if currency else written


def left_out_sentence(count: int) -> str:
    """What the report says under its sums when `count` amounts were in another currency."""
    amounts = (
        "1 amount in another currency" if count == 1 else f"{count} amounts in other currencies"
    )
    return f"{amounts} left out of the sums (leadrouter converts no currency)."
