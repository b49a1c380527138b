"""What a card says, whoever draws it: the person and company, how to reach them, and the fields
the policy chooses (`card.fields`), read from a lead's facts as routing made them."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from bot.card import Contact, Person, Settlement, card_content_of
from routing.accounts import AccountIndex
from routing.engine import route
from routing.leads import parse_lead
from routing.model import Account
from routing.policy import Policy, parse_policy
from storage.models import OfferStatus

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
POLICY = """\
reps:
  - {id: ann, name: Ann Archer}
teams:
  core: {members: [ann]}
rules:
  - {name: Everyone, assign: {team: core}}
"""
PRIYA = {
    "id": "L-1001",
    "email": "priya.shah@initech.com",
    "first_name": "Priya",
    "last_name": "Shah",
    "company": "Initech",
    "website": "https://www.initech.com/",
    "title": "VP of Sales",
    "phone": "+1 512 555 0101",
    "country": "United States",
    "state": "TX",
    "employees": "1500",
    "industry": "Software",
    "source": "demo_request",
    "score": "88",
}


def card(lead: dict[str, Any], policy_text: str = POLICY, **kwargs: Any) -> Any:
    policy: Policy = parse_policy(textwrap.dedent(policy_text))
    decision = route(parse_lead(lead), policy=policy, now=NOW, **kwargs)
    return card_content_of(
        decision.facts,
        policy,
        lead_id=decision.lead_id,
        reason=decision.reason,
        sla_seconds=decision.sla_seconds,
        offered_at=NOW,
    )


def test_the_card_names_the_person_and_company_and_says_how_to_reach_them() -> None:
    content = card(PRIYA)
    assert content.title == "Priya Shah · Initech"
    assert content.contact == Contact(
        email="priya.shah@initech.com", phone="+1 512 555 0101", website="https://www.initech.com/"
    )


def test_by_default_the_card_shows_title_industry_size_place_and_source() -> None:
    assert card(PRIYA).fields == (
        ("Title", "VP of Sales"),
        ("Industry", "Software"),
        ("Employees", "1,500"),
        ("Country", "US"),
        ("State", "TX"),
        ("Source", "demo_request"),
    )


def test_the_policy_chooses_the_fields_in_its_order_and_a_field_the_lead_lacks_is_left_out() -> (
    None
):
    fields = "score, fields.plan_tier, account.name, account.owner, segment, product"
    chosen = POLICY + f"card:\n  fields: [{fields}]\n"
    accounts = AccountIndex([Account("A1", "Initech Inc", domain="initech.com", owner="ann")])
    content = card({**PRIYA, "fields": {"plan_tier": "Gold"}}, chosen, accounts=accounts)
    assert content.fields == (
        ("Score", "88"),
        ("Plan tier", "Gold"),
        ("Account", "Initech Inc"),
        ("Account owner", "Ann Archer"),  # a rep id, shown as the rep's name
        ("Segment", "Enterprise"),
    )


def test_a_lead_with_neither_name_nor_company_is_titled_by_its_id_never_its_email() -> None:
    content = card({"id": "L-7", "email": "someone@example.org"})
    assert content.title == "Lead L-7"
    assert content.contact == Contact(email="someone@example.org", phone=None, website=None)
    assert card({"id": "L-8", "company": "Globex"}).title == "Globex"
    assert card({"id": "L-9", "first_name": "Jo"}).title == "Jo"


def test_the_offer_statuses_a_card_words_are_those_offers_are_stored_with() -> None:
    assert {"offered", "claimed", "rejected", "reassigned", "expired"} <= {
        status.value for status in OfferStatus
    }
    rejected = Settlement("rejected", rep="ann", holder="ben", queue=None, reason="no")
    assert rejected.words() == (
        "Rejected by ",
        Person("ann"),
        ": no",
        " · now with ",
        Person("ben"),
    )
    assert Settlement("claimed", rep="ann", holder="ann", queue=None, reason=None).moved is False
    expired = Settlement("expired", rep="ann", holder=None, queue="emea", reason=None)
    assert expired.moved and expired.words() == ("Reassigned to ", "the emea queue")
