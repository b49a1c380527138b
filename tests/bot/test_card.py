"""What a card says, whoever draws it: the person and company, how to reach them, and the fields
the policy chooses (`card.fields`), read from a lead's facts as routing made them."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from bot.card import (
    FOR_THE_REP,
    FOR_THE_TEAM,
    Contact,
    Person,
    Settlement,
    card_content_of,
    reassignment_note,
    why_moved,
)
from routing.accounts import AccountIndex
from routing.engine import route
from routing.leads import parse_lead
from routing.model import Account, reject_parts
from routing.policy import Policy, parse_policy
from storage.models import MoveReason, OfferStatus

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


def test_every_reason_an_offer_is_moved_for_has_words_that_blame_nobody() -> None:
    policy = parse_policy(POLICY)
    for because in MoveReason:
        said = why_moved(because.value, "Ann Archer")
        assert said is not None and "Ann Archer" in said and "taken" not in said
        # Back with the rep it left: never that it came from them, nor that it was taken.
        back = reassignment_note(
            policy,
            previous_status="reassigned",
            previous_rep="ann",
            rep="ann",
            waited_seconds=60,
            moved_because=because.value,
        ).words(FOR_THE_REP)
        assert back.startswith("offered again after ") and "Ann" not in back, back
        assert "taken" not in back
    assert why_moved(None, "Ann Archer") is None  # moved before reasons were kept
    assert why_moved("a reason of a newer release", "Ann Archer") is None


def test_a_reject_reason_splits_into_the_choice_and_the_note_only_the_next_rep_reads() -> None:
    assert reject_parts("Not my territory: wants Spanish") == ("Not my territory", "wants Spanish")
    assert reject_parts("Not my territory") == ("Not my territory", None)
    assert reject_parts("their CFO: my cousin") == (None, "their CFO: my cousin")
    assert reject_parts(None) == (None, None)
    came = reassignment_note(
        parse_policy(POLICY),
        previous_status="rejected",
        previous_rep="ann",
        waited_seconds=300,
        reason="Other: their CFO is my cousin",
    )
    assert came.words(FOR_THE_REP) == (
        "rejected by Ann Archer: Other: their CFO is my cousin · waiting 5m"
    )
    assert came.words(FOR_THE_TEAM) == "rejected by Ann Archer: Other · waiting 5m"
