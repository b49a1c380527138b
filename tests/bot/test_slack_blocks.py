"""The Block Kit builders: what a card, the reject modal and the App Home say, and that no lead can
break out of its text or past Slack's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.card import CardContent, Contact
from bot.slack.blocks import (
    REJECT_REASONS,
    Assignee,
    CardView,
    HomeData,
    HomeOffer,
    RepLoad,
    TeamLoad,
    assign_control,
    assigned_lead,
    assignees_of,
    clip,
    escape,
    home_view,
    mention,
    offer_card,
    queued_post,
    reject_modal,
    reject_reason,
    settled_card,
    slack_date,
    team_copy,
)
from bot.slack.ids import ActionId, BlockId, CallbackId
from routing.leads import MAX_LEAD_ID_LENGTH, InvalidLead, parse_lead
from routing.policy import parse_policy

NOW = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
DUE = NOW + timedelta(minutes=5)
CRM = "https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view?a=1&b=2"
HOSTILE = "<!channel> & <http://evil.example|click>"
# What may legitimately follow "<" in our mrkdwn: dates, mentions and our own CRM link.
OWN_TOKEN = re.compile(
    r"<(!date\^\d+\^[^|<>]*\|[^<>]*"
    r"|@U[A-Z0-9]+"
    r"|https://acme\.my\.salesforce\.com/[^<>|]*\|Open in CRM"
    # the lead's contact details, as links whose target we built and whose label we escaped
    r"|mailto:[^<>|\s]+\|[^<>]*"
    r"|tel:\+?\d+\|[^<>]*"
    r"|https?://[^<>|\s]+\|[^<>]*)>"
)
ASSIGNEES = (Assignee("ann", "Ann Archer", "emea"), Assignee("ben", "Ben Baker", "emea"))
ADA = Contact(email="ada@engines.example", phone="+44 20 7946 0000", website="engines.example")


def content(**overrides: Any) -> CardContent:
    values: dict[str, Any] = {
        "title": "Ada Lovelace · Analytical Engines",
        "contact": ADA,
        "fields": (
            ("Title", "CTO"),
            ("Company size", "5,000 employees · enterprise"),
            ("Region", "EMEA · GB"),
            ("Source", "webinar"),
            ("Score", "87"),
            ("Product", "Routing"),
        ),
        "reason": "Rule enterprise-emea: round robin in team EMEA",
        "sla_due_at": DUE,
        "sla_seconds": 300,
    }
    values.update(overrides)
    return CardContent(**values)


def texts(node: Any, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")) -> Iterator[str]:
    """Every string a reader could see: the `text` of each text object, however deeply nested."""
    if isinstance(node, dict):
        if node.get("type") in kinds and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from texts(value, kinds)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item, kinds)


def mrkdwn(node: Any) -> Iterator[str]:
    """The texts Slack parses for mentions, links and formatting."""
    return texts(node, ("mrkdwn",))


def blocks_of_type(blocks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == kind]


def assert_safe(text: str) -> None:
    """No "<" except tokens we wrote, no "&" except the three entities."""
    rest = OWN_TOKEN.sub("", text)
    assert "<" not in rest, text
    assert ">" not in rest, text
    assert re.search(r"&(?!amp;|lt;|gt;)", rest) is None, text


def assert_within_limits(blocks: list[dict[str, Any]], max_blocks: int) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        Block.parse(block).to_dict()  # type: ignore[union-attr]  # slack_sdk's own validators
        for text in texts(block):
            assert 1 <= len(text) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10


# --- text helpers --------------------------------------------------------------------------------


def test_escape_turns_the_three_control_characters_into_entities_ampersand_first() -> None:
    assert escape("a & <b> &lt;") == "a &amp; &lt;b&gt; &amp;lt;"


def test_mention_is_a_user_token() -> None:
    assert mention("U01ALICE") == "<@U01ALICE>"


def test_slack_date_carries_the_unix_time_and_a_utc_fallback() -> None:
    assert (
        slack_date(DUE) == "<!date^1794936000^{date_short_pretty} at {time}|2026-11-17 17:20 UTC>"
    )
    assert slack_date(DUE, "{time}").startswith("<!date^1794936000^{time}|")


def test_slack_date_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="time zone"):
        slack_date(datetime(2026, 11, 17, 17, 20))


def test_clip_never_cuts_an_entity_or_a_token_in_half() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 4) == "abc…"
    assert clip("ab &amp; cd", 6) == "ab …"
    assert clip("x " + slack_date(DUE), 20) == "x …"


# --- the offer card ------------------------------------------------------------------------------


def test_the_offer_card_shows_header_fields_reason_deadline_and_three_buttons() -> None:
    message = offer_card(CardView(lead_id="L-42", content=content(), crm_url=CRM))
    blocks = message.blocks

    assert message.text == "New lead for you: Ada Lovelace · Analytical Engines"
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Ada Lovelace · Analytical Engines", "emoji": True},
    }
    assert blocks[1]["block_id"] == BlockId.CARD_CONTACT
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[0] == "*Title*\nCTO"
    assert "*Company size*\n5,000 employees · enterprise" in fields
    assert len(fields) == 6
    all_text = list(texts(blocks))
    assert "*Why you:* Rule enterprise-emea: round robin in team EMEA" in all_text
    assert f"Claim by {slack_date(DUE)} (within 5m)" in all_text
    assert any("<!date^" in t for t in all_text)
    assert (
        "Lead L-42 · "
        "<https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view?a=1&amp;b=2|Open in CRM>"
        in all_text
    )

    (actions,) = blocks_of_type(blocks, "actions")
    assert actions["block_id"] == BlockId.CARD_ACTIONS
    buttons = actions["elements"]
    assert [b["action_id"] for b in buttons] == [ActionId.CLAIM, ActionId.REJECT, ActionId.MARK_OOO]
    assert [b["value"] for b in buttons] == ["L-42"] * 3
    assert [b.get("style") for b in buttons] == ["primary", None, None]
    assert [b["text"]["text"] for b in buttons] == ["Claim", "Reject", "I'm out"]


def test_the_rep_gets_the_leads_email_phone_and_website_as_links_and_its_id() -> None:
    blocks = offer_card(CardView(lead_id="L-42", content=content())).blocks
    (contact,) = [b for b in blocks if b.get("block_id") == BlockId.CARD_CONTACT]
    assert [f["text"] for f in contact["fields"]] == [
        "*E-mail*\n<mailto:ada@engines.example|ada@engines.example>",
        "*Phone*\n<tel:+442079460000|+44 20 7946 0000>",
        "*Website*\n<https://engines.example|engines.example>",
    ]
    assert blocks[1] is contact  # right under the header: the first thing a rep needs
    (context,) = blocks_of_type(blocks, "context")
    assert context["elements"][0]["text"] == "Lead L-42"  # no CRM: still the id, for `why`


def test_a_phone_becomes_a_tel_link_of_its_digits_and_a_website_gets_https() -> None:
    odd = Contact(
        email="o'neil+leads@example.co.uk",
        phone="(212) 555-0102 ext. 7",
        website="http://shop.example/en/?a=1&b=2",
    )
    blocks = offer_card(CardView(lead_id="L-1", content=content(contact=odd))).blocks
    shown = list(mrkdwn(blocks))
    assert "*E-mail*\n<mailto:o%27neil+leads@example.co.uk|o'neil+leads@example.co.uk>" in shown
    assert "*Phone*\n<tel:2125550102|(212) 555-0102 ext. 7>" in shown
    assert "*Website*\n<http://shop.example/en/?a=1&amp;b=2|shop.example/en/?a=1&amp;b=2>" in shown


def test_contact_details_that_are_not_a_link_are_shown_as_text() -> None:
    odd = Contact(email=None, phone="ask reception", website="javascript:alert(1)")
    blocks = offer_card(CardView(lead_id="L-1", content=content(contact=odd))).blocks
    (contact,) = [b for b in blocks if b.get("block_id") == BlockId.CARD_CONTACT]
    assert [f["text"] for f in contact["fields"]] == [
        "*Phone*\nask reception",
        "*Website*\njavascript:alert(1)",
    ]


def test_hostile_contact_details_link_and_ping_nobody() -> None:
    hostile = Contact(
        email="<!channel>|x@evil.example",
        phone="+1 555 <!here> 0101",
        website="evil.example/<!channel>|click",
    )
    message = offer_card(CardView(lead_id="L-1", content=content(contact=hostile)))
    for text in mrkdwn(message.blocks):
        assert_safe(text)
    shown = list(mrkdwn(message.blocks))
    assert (
        "*E-mail*\n<mailto:%3C%21channel%3E%7Cx@evil.example|&lt;!channel&gt;|x@evil.example>"
        in shown
    )
    assert "*Phone*\n<tel:+15550101|+1 555 &lt;!here&gt; 0101>" in shown
    assert (
        "*Website*\n<https://evil.example/%3C!channel%3E%7Cclick|evil.example/&lt;!channel&gt;|click>"
        in shown
    )


def test_who_sees_the_email_and_phone_before_and_after_claim() -> None:
    view = CardView(lead_id="L-42", content=content(), assignee=mention("U01ANN"))

    def personal(message: Any) -> bool:
        text = json.dumps(message.blocks) + message.text
        return "mailto:" in text or "tel:" in text or "ada@engines.example" in text

    def website(message: Any) -> bool:
        return "<https://engines.example|engines.example>" in json.dumps(message.blocks)

    # The rep the lead is offered to, before Claim and after it:
    assert personal(offer_card(view)) and website(offer_card(view))
    assert personal(settled_card(view, "Claimed by <@U01ANN>"))
    # Nobody else: not the team channel, nor the rep once the lead has moved on from them.
    assert not personal(team_copy(view)) and website(team_copy(view))
    assert not personal(settled_card(view, "Claimed by <@U01ANN>", team=True))
    assert not personal(settled_card(view, "Reassigned to <@U01BEN>", moved=True))
    # The queue's channel neither; the manager the watchdog alerts, in a DM, does.
    assert not personal(queued_post(view, "unmatched", ASSIGNEES))
    assert personal(queued_post(view, "unmatched", ASSIGNEES, alert=True))


def test_reject_and_im_out_ask_for_confirmation_and_claim_does_not() -> None:
    (actions,) = blocks_of_type(
        offer_card(CardView(lead_id="L-42", content=content())).blocks, "actions"
    )
    claim, reject, out = actions["elements"]
    assert "confirm" not in claim  # claiming is what the card is for: one click
    assert reject["confirm"]["title"]["text"] == "Reject this lead?"
    assert reject["confirm"]["confirm"]["text"] == "Reject"
    assert reject["confirm"]["deny"]["text"] == "Keep it"
    assert out["confirm"]["title"]["text"] == "Mark yourself out?"
    assert "all your unclaimed leads" in out["confirm"]["text"]["text"]
    assert out["confirm"]["confirm"]["text"] == "I'm out"
    assert out["confirm"]["style"] == "danger"


def test_the_app_homes_reject_and_im_out_ask_for_confirmation_too() -> None:
    blocks = home_view(home(offers=(offer(1),)))["blocks"]
    (actions,) = blocks_of_type(blocks, "actions")
    claim, reject = actions["elements"]
    assert "confirm" not in claim
    assert reject["confirm"]["title"]["text"] == "Reject this lead?"
    (available,) = [b for b in blocks if b.get("accessory")]
    assert available["accessory"]["confirm"]["title"]["text"] == "Mark yourself out?"


def test_the_note_sits_above_the_reason() -> None:
    note = f"taken from {mention('U01BOB')}, who is out of office"
    blocks = offer_card(CardView(lead_id="L-42", content=content(), note=note)).blocks
    all_text = list(texts(blocks))
    shown = f"Reassigned to you: {note}"
    assert all_text.index(shown) < next(i for i, t in enumerate(all_text) if t.startswith("*Why"))


def test_a_card_without_deadline_fields_or_crm_link_leaves_those_lines_out() -> None:
    bare = content(contact=Contact(), fields=(), sla_due_at=None, sla_seconds=None)
    blocks = offer_card(CardView(lead_id="L-1", content=bare)).blocks
    assert [b["type"] for b in blocks] == ["header", "section", "context", "actions"]
    assert not any("Claim by" in t or "CRM" in t for t in texts(blocks))
    assert blocks[2]["elements"][0]["text"] == "Lead L-1"


def test_hostile_lead_data_is_escaped_in_every_text_of_the_card() -> None:
    hostile = content(
        title=f"{HOSTILE} · {HOSTILE}",
        fields=(("Title", HOSTILE), ("Company size", "<!here>"), ("Source", "a&b")),
        reason=f"because {HOSTILE}",
    )
    view = CardView(lead_id="L-42", content=hostile, crm_url=CRM)
    for message in (offer_card(view), settled_card(view, f"Claimed by {mention('U01ALICE')}")):
        assert_safe(message.text)  # the notification's text is mrkdwn too
        assert "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;" in message.text
        for text in mrkdwn(message.blocks):
            assert_safe(text)
        assert any("a&amp;b" in t for t in mrkdwn(message.blocks))


def test_the_header_is_plain_text_shown_as_the_lead_wrote_it_without_html_escapes() -> None:
    # Slack never parses plain_text: "<!channel>" there is shown as typed and pings nobody, and
    # an escape would be shown as "&lt;".
    view = CardView(lead_id="L-42", content=content(title="Small Shop <!channel> & Sons"))
    for message in (offer_card(view), settled_card(view, "Claimed")):
        header = message.blocks[0]
        assert header["text"] == {
            "type": "plain_text",
            "text": "Small Shop <!channel> & Sons",
            "emoji": True,
        }
        plain = json.dumps(list(texts(message.blocks, ("plain_text",))))
        assert "&lt;" not in plain and "&amp;" not in plain


def test_a_crm_link_that_is_not_http_is_refused() -> None:
    for url in (
        "javascript:alert(1)",
        "ftp://crm.example/x",
        "https://",
        "https://crm.example/a b",
    ):
        with pytest.raises(ValueError, match="not an http"):
            offer_card(CardView(lead_id="L-1", content=content(), crm_url=url))


def test_a_crm_link_cannot_close_its_own_token_early() -> None:
    url = "https://acme.my.salesforce.com/x?q=a|b>c<d"
    blocks = offer_card(CardView(lead_id="L-1", content=content(), crm_url=url)).blocks
    link = "<https://acme.my.salesforce.com/x?q=a%7Cb%3Ec%3Cd|Open in CRM>"
    assert f"Lead L-1 · {link}" in list(texts(blocks))


def test_a_lead_id_too_long_for_a_button_value_is_refused() -> None:
    with pytest.raises(ValueError, match="lead id"):
        offer_card(CardView(lead_id="x" * 2001, content=content()))
    assert offer_card(CardView(lead_id="x" * 2000, content=content())).blocks


def test_a_long_reason_long_title_and_twenty_fields_stay_within_slack_limits() -> None:
    huge = content(
        title="T&" * 200,
        fields=tuple((f"Field {i}", "<v>" * 1000) for i in range(20)),
        reason="because & " * 1000,
    )
    view = CardView(lead_id="L-1", content=huge, crm_url=CRM, note="n" * 5000)
    for message in (offer_card(view), settled_card(view, "s" * 4000)):
        assert_within_limits(message.blocks, max_blocks=50)
        for text in mrkdwn(message.blocks):
            assert_safe(text)
        (fields,) = [
            b["fields"]
            for b in message.blocks
            if "fields" in b and b.get("block_id") != BlockId.CARD_CONTACT
        ]
        assert len(fields) == 10
        assert fields[-1]["text"] == "_… and 11 more_"
        header = message.blocks[0]["text"]["text"]
        assert header == "T&" * 74 + "T…"  # plain text: cut at 150, no entities to respect


# --- the team channel's copy ---------------------------------------------------------------------


def test_the_team_channels_copy_names_the_assignee_and_has_no_button_for_the_clicker() -> None:
    view = CardView(lead_id="L-42", content=content(), crm_url=CRM, assignee=mention("U01ANN"))
    message = team_copy(view)
    all_text = list(texts(message.blocks))

    assert message.text == "New lead for <@U01ANN>: Ada Lovelace · Analytical Engines"
    assert blocks_of_type(message.blocks, "actions") == []  # nothing acts on whoever clicks
    assert "New lead for <@U01ANN>" in all_text
    assert not any("Why you" in t or "for you" in t for t in all_text)
    assert "*Why:* Rule enterprise-emea: round robin in team EMEA" in all_text
    assert f"To be claimed by {slack_date(DUE)} (within 5m)" in all_text


def test_a_reassigned_leads_team_copy_says_who_it_went_to_not_to_you() -> None:
    view = CardView(
        lead_id="L-42",
        content=content(),
        assignee=mention("U01BEN"),
        note="rejected by Ann Archer · waiting 11m",
    )
    team = list(texts(team_copy(view).blocks))
    assert "New lead for <@U01BEN>" in team  # named once, not again in the note
    assert "Reassigned: rejected by Ann Archer · waiting 11m" in team
    rep = list(texts(offer_card(view).blocks))
    assert "Reassigned to you: rejected by Ann Archer · waiting 11m" in rep


# --- the settled card ----------------------------------------------------------------------------


def test_a_settled_card_has_no_buttons_and_shows_the_status_under_the_header() -> None:
    status = f"Claimed by {mention('U01ALICE')} {slack_date(NOW)}"
    message = settled_card(CardView(lead_id="L-42", content=content(), crm_url=CRM), status)
    blocks = message.blocks
    assert blocks_of_type(blocks, "actions") == []
    assert blocks[1]["text"]["text"] == status
    assert not any("Claim by" in t for t in texts(blocks))
    assert any("Why you" in t for t in texts(blocks))
    assert message.text == f"Ada Lovelace · Analytical Engines: {status}"


def test_a_card_whose_lead_moved_on_says_what_happened_instead_of_why_you() -> None:
    view = CardView(
        lead_id="L-42",
        content=content(),
        crm_url=CRM,
        note="rejected by Bob · waiting 3m",
        assignee=mention("U01ALICE"),
    )
    status = f"Reassigned to {mention('U01BEN')}: not claimed within 5m"
    for team in (False, True):
        message = settled_card(view, status, team=team, moved=True)
        all_text = list(texts(message.blocks))
        assert message.blocks[1]["text"]["text"] == status
        assert not any(t.startswith("*Why") for t in all_text), all_text  # stale once it moved
        assert not any("Reassigned to you" in t for t in all_text)
        assert blocks_of_type(message.blocks, "actions") == []
    claimed = list(texts(settled_card(view, "Claimed by me", moved=False).blocks))
    assert any(t.startswith("*Why you:*") for t in claimed)  # still true of a claimed lead


# --- the reject modal ----------------------------------------------------------------------------


def test_the_reject_modal_carries_the_lead_and_the_named_ids() -> None:
    modal = reject_modal("L-42", "Ada & <!channel>")
    View(**modal).to_dict()
    assert modal["type"] == "modal"
    assert modal["callback_id"] == CallbackId.REJECT_MODAL
    assert modal["private_metadata"] == "L-42"
    assert modal["title"]["text"] == "Reject lead"
    assert modal["submit"]["text"] == "Reject"
    assert modal["close"]["text"] == "Cancel"
    section, reason, note = modal["blocks"]
    assert section["text"]["text"] == "*Ada &amp; &lt;!channel&gt;*"
    assert reason["block_id"] == BlockId.REJECT_REASON
    assert reason["element"]["type"] == "radio_buttons"
    assert reason["element"]["action_id"] == ActionId.REJECT_REASON
    assert [o["value"] for o in reason["element"]["options"]] == list(REJECT_REASONS)
    assert "Not my territory" in REJECT_REASONS
    assert note["block_id"] == BlockId.REJECT_NOTE
    assert note["optional"] is True
    assert note["element"] == {
        "type": "plain_text_input",
        "action_id": ActionId.REJECT_NOTE,
        "multiline": True,
        "max_length": 500,
    }


def state(choice: str | None = None, note: str | None = None) -> dict[str, Any]:
    selected = {"text": {"type": "plain_text", "text": choice}, "value": choice} if choice else None
    return {
        BlockId.REJECT_REASON: {
            ActionId.REJECT_REASON: {"type": "radio_buttons", "selected_option": selected}
        },
        BlockId.REJECT_NOTE: {ActionId.REJECT_NOTE: {"type": "plain_text_input", "value": note}},
    }


def test_reject_reason_combines_the_choice_and_the_note() -> None:
    assert reject_reason(state("Not my territory")) == "Not my territory"
    assert reject_reason(state("Other", " ex-employee ")) == "Other: ex-employee"
    assert reject_reason(state(note="spam form fill")) == "spam form fill"


def test_reject_reason_is_none_when_the_rep_gave_neither() -> None:
    assert reject_reason(state()) is None
    assert reject_reason(state(note="   ")) is None
    assert reject_reason({}) is None


# --- the App Home --------------------------------------------------------------------------------


def offer(i: int, title: str = "Ada · Engines") -> HomeOffer:
    return HomeOffer(
        lead_id=f"L-{i}",
        title=title,
        reason="round robin in EMEA",
        offered_at=NOW - timedelta(minutes=3),
        sla_due_at=DUE,
    )


def home(**overrides: Any) -> HomeData:
    values: dict[str, Any] = {
        "name": "Alice",
        "is_rep": True,
        "offers": (),
        "away": False,
        "away_until": None,
        "away_reason": None,
        "is_manager": False,
        "teams": (),
        "queue_size": 0,
        "queue_oldest_at": None,
        "now": NOW,
    }
    values.update(overrides)
    return HomeData(**values)


def test_a_rep_sees_each_open_offer_with_its_own_buttons() -> None:
    view = home_view(home(offers=(offer(1, "A <!channel>"), offer(2))))
    View(**view).to_dict()
    blocks = view["blocks"]
    assert view["type"] == "home"
    assert blocks[0]["text"]["text"] == "Your leads"
    actions = blocks_of_type(blocks, "actions")
    assert [a["block_id"] for a in actions] == ["home_offer_0", "home_offer_1"]
    for action, lead in zip(actions, ("L-1", "L-2"), strict=True):
        assert [b["action_id"] for b in action["elements"]] == [ActionId.CLAIM, ActionId.REJECT]
        assert [b["value"] for b in action["elements"]] == [lead, lead]
        assert action["elements"][0]["style"] == "primary"
    first = blocks[1]["text"]["text"]
    assert first.startswith("*A &lt;!channel&gt;*\nround robin in EMEA\n")
    assert f"Claim by {slack_date(DUE)}" in first
    assert any("You're available" in t for t in texts(blocks))
    (available,) = [b for b in blocks if b.get("accessory")]
    assert available["accessory"]["action_id"] == ActionId.HOME_AWAY
    assert available["accessory"]["text"]["text"] == "I'm out"
    for text in texts(blocks):
        assert_safe(text)


def test_a_rep_without_offers_is_told_so() -> None:
    blocks = home_view(home())["blocks"]
    assert "No open leads." in list(texts(blocks))
    assert blocks_of_type(blocks, "actions") == []


def test_an_away_rep_sees_until_when_and_why_with_an_im_back_button() -> None:
    until = NOW + timedelta(days=2)
    blocks = home_view(home(away=True, away_until=until, away_reason="PTO <!here>"))["blocks"]
    (section,) = [b for b in blocks if b.get("accessory")]
    assert section["text"]["text"] == (
        f"You're out of office until {slack_date(until)}.\nPTO &lt;!here&gt;"
    )
    assert section["accessory"]["action_id"] == ActionId.HOME_BACK
    assert section["accessory"]["text"]["text"] == "I'm back"


def test_an_away_rep_without_an_end_date_is_out_until_further_notice() -> None:
    blocks = home_view(home(away=True))["blocks"]
    assert "You're out of office until further notice." in list(texts(blocks))


def test_a_manager_sees_each_team_load_and_the_unmatched_queue() -> None:
    back = NOW + timedelta(days=1)
    teams = (
        TeamLoad(
            team="EMEA",
            reps=(
                RepLoad(name="Alice", open=3, capacity=5, away=False, away_until=None),
                RepLoad(name="Bob <!channel>", open=1, capacity=None, away=True, away_until=back),
            ),
        ),
        TeamLoad(
            team="NA",
            reps=(RepLoad(name="Cy", open=0, capacity=2, away=True, away_until=None),),
        ),
    )
    oldest = NOW - timedelta(hours=2, minutes=5)
    view = home_view(
        home(is_rep=False, is_manager=True, teams=teams, queue_size=4, queue_oldest_at=oldest)
    )
    View(**view).to_dict()
    all_text = list(texts(view["blocks"]))
    assert "Your leads" not in all_text
    assert "Your teams" in all_text
    assert (
        f"*EMEA*\n• Alice: 3/5\n• Bob &lt;!channel&gt;: 1 (no cap) · out until {slack_date(back)}"
        in all_text
    )
    assert "*NA*\n• Cy: 0/2 · out until further notice" in all_text
    assert all_text[-1] == "*Unmatched queue:* 4 leads, oldest waiting 2h 5m"


def test_an_empty_queue_says_so() -> None:
    blocks = home_view(home(is_rep=False, is_manager=True))["blocks"]
    assert list(texts(blocks))[-1] == "*Unmatched queue:* empty"


def test_a_rep_who_also_manages_sees_both_parts() -> None:
    teams = (TeamLoad(team="EMEA", reps=()),)
    all_text = list(texts(home_view(home(is_manager=True, teams=teams, offers=(offer(1),)))))
    assert all_text.index("Your leads") < all_text.index("Your teams")
    assert "*EMEA*\n_no reps_" in all_text


def test_a_stranger_is_told_to_ask_revops_to_add_them() -> None:
    view = home_view(home(name="Mallory <!channel>", is_rep=False))
    (block,) = view["blocks"]
    text = block["text"]["text"]
    assert "not in the routing policy" in text
    assert "RevOps admin" in text
    assert "Slack id" in text
    assert_safe(text)


def test_three_hundred_offers_stay_within_a_hundred_blocks_and_say_how_many_more() -> None:
    offers = tuple(offer(i) for i in range(300))
    view = home_view(home(offers=offers))
    View(**view).to_dict()
    blocks = view["blocks"]
    assert len(blocks) <= 100
    shown = len(blocks_of_type(blocks, "actions"))
    assert f"… and {300 - shown} more" in list(texts(blocks))
    assert len({b["block_id"] for b in blocks if "block_id" in b}) == shown


def test_a_manager_with_hundreds_of_offers_teams_and_reps_stays_within_limits() -> None:
    reps = tuple(
        RepLoad(name=f"Rep {i} & co", open=i, capacity=10, away=i % 2 == 0, away_until=NOW)
        for i in range(200)
    )
    teams = tuple(TeamLoad(team=f"Team {i}", reps=reps) for i in range(300))
    for is_rep in (True, False):
        view = home_view(
            home(
                is_rep=is_rep,
                offers=tuple(offer(i, "x" * 5000) for i in range(300)),
                is_manager=True,
                teams=teams,
                queue_size=1,
                queue_oldest_at=NOW,
            )
        )
        View(**view).to_dict()
        assert_within_limits(view["blocks"], max_blocks=100)
        all_text = list(texts(view["blocks"]))
        assert any(t.endswith("more") and t.startswith("*Team 0*") for t in all_text)
        assert all_text[-1] == "*Unmatched queue:* 1 lead, oldest waiting 0s"


def test_the_longest_lead_id_intake_accepts_fits_a_queued_posts_assign_control() -> None:
    longest = "L" * MAX_LEAD_ID_LENGTH
    control = assign_control(longest, ASSIGNEES).to_dict()
    assert len(control["block_id"]) <= 255
    assert assigned_lead(control["block_id"]) == longest
    with pytest.raises(InvalidLead):
        parse_lead({"id": longest + "L"})


# --- the Assign picker ---------------------------------------------------------------------------


def test_the_assign_picker_offers_the_policys_reps_who_have_a_slack_id_by_name() -> None:
    policy = parse_policy(
        """\
reps:
  - {id: zed, name: Zed Zimmer, slack: UZED}
  - {id: ann, name: Ann Archer, slack: UANN}
  - {id: dot, name: Dot Drake}
teams:
  core: {members: [zed, ann, dot]}
rules:
  - {name: Everyone, assign: {team: core}}
"""
    )
    control = assign_control("L-1", assignees_of(policy)).to_dict()
    (select,) = control["elements"]
    assert select["type"] == "static_select"  # not users_select: any workspace user
    assert select["action_id"] == ActionId.ASSIGN
    # Dot has no Slack id: no card could reach her, so she is not offered.
    assert [(o["value"], o["text"]["text"]) for o in select["options"]] == [
        ("ann", "Ann Archer"),
        ("zed", "Zed Zimmer"),
    ]


def test_more_reps_than_one_list_holds_are_grouped_by_team() -> None:
    many = tuple(Assignee(f"r{n}", f"Rep {n:03}", f"team {n % 3}") for n in range(250))
    (select,) = assign_control("L-1", many).to_dict()["elements"]
    assert "options" not in select
    groups = select["option_groups"]
    assert [g["label"]["text"] for g in groups] == ["team 0", "team 1", "team 2"]
    assert all(len(g["options"]) <= 100 for g in groups)
    assert sorted(o["value"] for g in groups for o in g["options"]) == sorted(
        a.rep_id for a in many
    )


def test_a_queued_lead_with_nobody_to_assign_to_says_so_instead_of_an_empty_picker() -> None:
    message = queued_post(CardView(lead_id="L-1", content=content()), "unmatched", ())
    assert blocks_of_type(message.blocks, "actions") == []
    assert any("No rep in the policy has a Slack id" in t for t in texts(message.blocks))
