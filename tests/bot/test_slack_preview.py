"""A Slack message drawn as plain text (what `leadrouter demo` prints): read from the very blocks
Slack would be sent, so it says what the card says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.card import CardContent, Contact
from bot.slack.blocks import mentioned, plainly
from bot.slack.cards import CardView, offer_card, settled_card, team_copy
from bot.slack.preview import as_text

NEW_YORK = ZoneInfo("America/New_York")
DUE = datetime(2026, 11, 17, 17, 20, tzinfo=UTC)
CARD = CardContent(
    title="Grace Ellis · Riverside <Health> & Co",
    contact=Contact(
        email="dr.ellis@riversidehealth.org",
        phone="+1 614 555 0125",
        website="riversidehealth.org",
    ),
    fields=(("Title", "Chief Medical Officer"), ("Employees", "650"), ("Source", "demo_request")),
    reason="Healthcare specialist · round robin <in> team smb",
    sla_due_at=DUE,
    sla_seconds=300,
)


def test_the_rep_card_reads_as_slack_draws_it() -> None:
    crm = "https://app.hubspot.com/contacts/1/record/0-1/51025?a=1&b=2"
    text = as_text(offer_card(CardView("L-1025", CARD, crm_url=crm)), tz=NEW_YORK)
    assert text.splitlines() == [
        "Grace Ellis · Riverside <Health> & Co",
        "─" * len("Grace Ellis · Riverside <Health> & Co"),
        "",
        "E-mail: dr.ellis@riversidehealth.org",
        "Phone: +1 614 555 0125",
        "Website: riversidehealth.org",
        "",
        "Title: Chief Medical Officer",
        "Employees: 650",
        "Source: demo_request",
        "",
        "Why you: Healthcare specialist · round robin <in> team smb",
        "",
        "Claim by Tue 17 Nov at 12:20 EST (within 5m)",  # in the reader's zone
        "",
        "Lead L-1025 · Open in CRM",
        "",
        "[ Claim ]  [ Reject ]  [ I'm out ]",
    ]


def test_mentions_read_as_names_and_a_settled_card_has_no_buttons() -> None:
    view = CardView("L-1", CARD, assignee=mentioned("U01BOB"))
    names = {"U01BOB": "Bob Brown"}
    channel = as_text(team_copy(view), tz=NEW_YORK, names=names)
    assert "New lead for @Bob Brown" in channel
    assert "dr.ellis" not in channel and "[ " not in channel
    status = plainly("Claimed by ") + mentioned("U01BOB")
    claimed = as_text(settled_card(view, status), tz=NEW_YORK)
    assert "Claimed by @U01BOB" in claimed and "[ Claim ]" not in claimed


def test_a_date_in_another_zone_reads_in_that_zone() -> None:
    later = CardContent(**{**_fields(CARD), "sla_due_at": DUE + timedelta(days=1)})
    text = as_text(offer_card(CardView("L-1", later)), tz=ZoneInfo("Europe/Berlin"))
    assert "Claim by Wed 18 Nov at 18:20 CET (within 5m)" in text


def _fields(card: CardContent) -> dict[str, object]:
    return {name: getattr(card, name) for name in card.__dataclass_fields__}
