"""Currency codes, and amounts written with theirs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing.money import currency_code, left_out_sentence, same_currency, with_currency


@pytest.mark.parametrize(("text", "code"), [("USD", "USD"), (" eur", "EUR"), ("jpy ", "JPY")])
def test_an_iso_4217_code_is_read_in_capitals(text: str, code: str) -> None:
    assert currency_code(text) == code


@pytest.mark.parametrize("text", ["", "US", "DOLLAR", "$", "XAU", "XXX", "XTS", "ABC"])
def test_what_is_not_a_currency_to_price_a_deal_in_is_none(text: str) -> None:
    assert currency_code(text) is None


def test_an_amount_in_another_currency_is_not_ours_and_an_unnamed_one_is() -> None:
    assert not same_currency("GBP", "USD")
    assert same_currency("usd", "USD")
    assert same_currency(None, "USD")  # a CRM with one currency names none
    assert same_currency("GBP", None)  # unset: the operator's word that all are in one


def test_an_amount_is_written_with_its_code_when_one_is_set() -> None:
    assert with_currency(Decimal("12000.5"), "EUR") == "12,000.50 EUR"
    assert with_currency(Decimal("12000.5"), None) == "12,000.50"


def test_the_amounts_left_out_are_counted_in_words() -> None:
    assert left_out_sentence(1).startswith("1 amount in another currency left out")
    assert left_out_sentence(3).startswith("3 amounts in other currencies left out")
