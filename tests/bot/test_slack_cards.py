"""A lead's card as Block Kit: what the rep, their team's channel and a queue's channel see,
and that no lead can break out of its text or past Slack's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.card import CameFrom, Contact
from bot.slack.blocks import mentioned, plainly, slack_date
from bot.slack.cards import CardView, offer_card, queued_post, settled_card, team_copy
from bot.slack.ids import ActionId, BlockId
from tests.bot.test_slack_blocks import (
    ASSIGNEES,
    CRM,
    DUE,
    HOSTILE,
    assert_safe,
    assert_within_limits,
    blocks_of_type,
    content,
    links,
    literal_texts,
    mrkdwn,
    rich_as_mrkdwn,
    rich_text_of,
    texts,
)

# --- the offer card ------------------------------------------------------------------------------


def test_the_offer_card_shows_header_fields_reason_deadline_and_three_buttons() -> None:
    message = offer_card(CardView(lead_id="L-42", content=content(), crm_url=CRM))
    blocks = message.blocks

    assert message.text == "New lead for you: Ada Lovelace · Analytical Engines"
    assert message.mrkdwn is False  # the lead's name in a notification is not formatted
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Ada Lovelace · Analytical Engines", "emoji": True},
    }
    assert blocks[1]["block_id"] == BlockId.CARD_CONTACT
    fields = rich_as_mrkdwn(blocks[2]).split("\n")
    assert fields[0] == "*Title:* CTO"
    assert "*Company size:* 5,000 employees · enterprise" in fields
    assert len(fields) == 6
    all_text = list(texts(blocks))
    assert "*Why you:* Rule enterprise-emea: round robin in team EMEA" in all_text
    assert f"Claim by {slack_date(DUE)} (within 5m)" in all_text
    assert any("<!date^" in t for t in all_text)
    (footer,) = blocks_of_type(blocks, "context")
    assert [e["text"] for e in footer["elements"]] == [
        "Lead L-42",
        "· <https://acme.my.salesforce.com/lightning/r/Lead/00Q1/view?a=1&amp;b=2|Open in CRM>",
    ]
    assert footer["elements"][0]["type"] == "plain_text"  # the lead's id, as written

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
    assert links(contact) == [
        ("mailto:ada@engines.example", "ada@engines.example"),
        ("tel:+442079460000", "+44 20 7946 0000"),
        ("https://engines.example", "engines.example"),
    ]
    assert rich_as_mrkdwn(contact).split("\n") == [
        "*E-mail:* <mailto:ada@engines.example|ada@engines.example>",
        "*Phone:* <tel:+442079460000|+44 20 7946 0000>",
        "*Website:* <https://engines.example|engines.example>",
    ]
    assert blocks[1] is contact  # right under the header: the first thing a rep needs
    (context,) = blocks_of_type(blocks, "context")
    assert [e["text"] for e in context["elements"]] == ["Lead L-42"]  # still the id, for `why`


def test_a_phone_becomes_a_tel_link_of_its_digits_and_a_website_gets_https() -> None:
    odd = Contact(
        email="o'neil+leads@example.co.uk",
        phone="(212) 555-0102 ext. 7",
        website="http://shop.example/en/?a=1&b=2",
    )
    blocks = offer_card(CardView(lead_id="L-1", content=content(contact=odd))).blocks
    (contact,) = [b for b in blocks if b.get("block_id") == BlockId.CARD_CONTACT]
    assert links(contact) == [
        ("mailto:o%27neil+leads@example.co.uk", "o'neil+leads@example.co.uk"),
        ("tel:2125550102", "(212) 555-0102 ext. 7"),
        ("http://shop.example/en/?a=1&b=2", "shop.example/en/?a=1&b=2"),
    ]


def test_contact_details_that_are_not_a_link_are_shown_as_text() -> None:
    odd = Contact(email=None, phone="ask reception", website="javascript:alert(1)")
    blocks = offer_card(CardView(lead_id="L-1", content=content(contact=odd))).blocks
    (contact,) = [b for b in blocks if b.get("block_id") == BlockId.CARD_CONTACT]
    assert links(contact) == []
    assert rich_as_mrkdwn(contact).split("\n") == [
        "*Phone:* ask reception",
        "*Website:* javascript:alert(1)",
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
    (contact,) = [b for b in message.blocks if b.get("block_id") == BlockId.CARD_CONTACT]
    # Rich text links: the label shown as written, the target built by us.
    assert links(contact) == [
        ("mailto:%3C%21channel%3E%7Cx@evil.example", "<!channel>|x@evil.example"),
        ("tel:+15550101", "+1 555 <!here> 0101"),
        ("https://evil.example/%3C!channel%3E%7Cclick", "evil.example/<!channel>|click"),
    ]


def test_who_sees_the_email_and_phone_before_and_after_claim() -> None:
    view = CardView(lead_id="L-42", content=content(), assignee=mentioned("U01ANN"))
    claimed = plainly("Claimed by ") + mentioned("U01ANN")

    def personal(message: Any) -> bool:
        text = json.dumps(message.blocks) + message.text
        return "mailto:" in text or "tel:" in text or "ada@engines.example" in text

    def website(message: Any) -> bool:
        return ("https://engines.example", "engines.example") in links(message.blocks)

    # The rep the lead is offered to, before Claim and after it:
    assert personal(offer_card(view)) and website(offer_card(view))
    assert personal(settled_card(view, claimed))
    # Nobody else: not the team channel, nor the rep once the lead has moved on from them.
    assert not personal(team_copy(view)) and website(team_copy(view))
    assert not personal(settled_card(view, claimed, team=True))
    moved = plainly("Reassigned to ") + mentioned("U01BEN")
    assert not personal(settled_card(view, moved, moved=True))
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


def test_the_note_sits_above_the_reason() -> None:
    note = CameFrom("Bob Brown is out of office", "waiting 5m")
    blocks = offer_card(CardView(lead_id="L-42", content=content(), note=note)).blocks
    all_text = list(texts(blocks))
    shown = "Reassigned to you: Bob Brown is out of office · waiting 5m"
    assert all_text.index(shown) < next(i for i, t in enumerate(all_text) if t.startswith("*Why"))


def test_a_card_without_deadline_fields_or_crm_link_leaves_those_lines_out() -> None:
    bare = content(contact=Contact(), fields=(), sla_due_at=None, sla_seconds=None)
    blocks = offer_card(CardView(lead_id="L-1", content=bare)).blocks
    assert [b["type"] for b in blocks] == ["header", "rich_text", "context", "actions"]
    assert not any("Claim by" in t or "CRM" in t for t in texts(blocks))
    assert blocks[2]["elements"][0]["text"] == "Lead L-1"


def test_hostile_lead_data_is_shown_as_written_and_never_parsed() -> None:
    hostile = content(
        title=f"{HOSTILE} · {HOSTILE}",
        fields=(("Title", HOSTILE), ("Company size", "<!here>"), ("Source", "a&b *c*")),
        reason=f"because {HOSTILE}",
    )
    view = CardView(lead_id="L-42 <!here>", content=hostile, crm_url=CRM)
    offered = offer_card(view)
    assert_safe(offered.text)  # the notification's text: escaped, and with mrkdwn off
    assert "&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;" in offered.text
    assert offered.mrkdwn is False
    settled = settled_card(view, plainly("Claimed by ") + mentioned("U01ALICE"))
    assert settled.text == "Claimed by <@U01ALICE>"  # chat.update cannot turn mrkdwn off
    for message in (offered, settled):
        for text in mrkdwn(message.blocks):
            assert_safe(text)
            assert "evil" not in text and "here" not in text and "a&" not in text
        shown = list(literal_texts(message.blocks))
        for written in (HOSTILE, "<!here>", "a&b *c*", f"because {HOSTILE}", "Lead L-42 <!here>"):
            assert any(written in text for text in shown), written


def test_the_header_is_plain_text_shown_as_the_lead_wrote_it_without_html_escapes() -> None:
    # Slack never parses plain_text: "<!channel>" there is shown as typed and pings nobody, and
    # an escape would be shown as "&lt;".
    view = CardView(lead_id="L-42", content=content(title="Small Shop <!channel> & Sons"))
    for message in (offer_card(view), settled_card(view, plainly("Claimed"))):
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
    assert f"· {link}" in list(texts(blocks))


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
    view = CardView(
        lead_id="L-1", content=huge, crm_url=CRM, note=CameFrom("n" * 5000, "waiting 1m", "m" * 500)
    )
    for message in (offer_card(view), settled_card(view, plainly("s" * 4000))):
        assert_within_limits(message.blocks, max_blocks=50)
        for text in mrkdwn(message.blocks):
            assert_safe(text)
        (fields,) = [b for b in message.blocks if "*Field 0:*" in rich_text_of(b)]
        lines = rich_as_mrkdwn(fields).split("\n")
        assert len(lines) == 10  # nine shown, each with its share of the block
        assert all(line.startswith(f"*Field {i}:* &lt;v&gt;") for i, line in enumerate(lines[:9]))
        assert lines[-1] == "_… and 11 more_"
        header = message.blocks[0]["text"]["text"]
        assert header == "T&" * 74 + "T…"  # plain text: cut at 150, no entities to respect


# --- the team channel's copy ---------------------------------------------------------------------


def test_the_team_channels_copy_names_the_assignee_and_has_no_button_for_the_clicker() -> None:
    view = CardView(lead_id="L-42", content=content(), crm_url=CRM, assignee=mentioned("U01ANN"))
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
        assignee=mentioned("U01BEN"),
        note=CameFrom("rejected by Ann Archer", "waiting 11m"),
    )
    team = list(texts(team_copy(view).blocks))
    assert "New lead for <@U01BEN>" in team  # named once, not again in the note
    assert "Reassigned: rejected by Ann Archer · waiting 11m" in team
    rep = list(texts(offer_card(view).blocks))
    assert "Reassigned to you: rejected by Ann Archer · waiting 11m" in rep


# --- the settled card ----------------------------------------------------------------------------


def test_a_settled_card_has_no_buttons_and_shows_the_status_under_the_header() -> None:
    status = plainly("Claimed by ") + mentioned("U01ALICE")
    message = settled_card(CardView(lead_id="L-42", content=content(), crm_url=CRM), status)
    blocks = message.blocks
    assert blocks_of_type(blocks, "actions") == []
    assert rich_as_mrkdwn(blocks[1]) == "Claimed by <@U01ALICE>"
    assert {"type": "user", "user_id": "U01ALICE"} in blocks[1]["elements"][0]["elements"]
    assert not any("Claim by" in t for t in texts(blocks))
    assert any("Why you" in t for t in texts(blocks))
    # An update notifies nobody, and chat.update cannot turn mrkdwn off: the status alone.
    assert message.text == "Claimed by <@U01ALICE>"


def test_a_card_whose_lead_moved_on_says_what_happened_instead_of_why_you() -> None:
    view = CardView(
        lead_id="L-42",
        content=content(),
        crm_url=CRM,
        note=CameFrom("rejected by Bob", "waiting 3m"),
        assignee=mentioned("U01ALICE"),
    )
    status = plainly("Reassigned to ") + mentioned("U01BEN") + plainly(": not claimed within 5m")
    for team in (False, True):
        message = settled_card(view, status, team=team, moved=True)
        all_text = list(texts(message.blocks))
        assert rich_as_mrkdwn(message.blocks[1]) == "Reassigned to <@U01BEN>: not claimed within 5m"
        assert not any(t.startswith("*Why") for t in all_text), all_text  # stale once it moved
        assert not any("Reassigned to you" in t for t in all_text)
        assert blocks_of_type(message.blocks, "actions") == []
    claimed = list(texts(settled_card(view, plainly("Claimed by me"), moved=False).blocks))
    assert any(t.startswith("*Why you:*") for t in claimed)  # still true of a claimed lead


def test_a_queued_lead_with_nobody_to_assign_to_says_so_instead_of_an_empty_picker() -> None:
    message = queued_post(CardView(lead_id="L-1", content=content()), "unmatched", ())
    assert blocks_of_type(message.blocks, "actions") == []
    assert any("No rep in the policy has a Slack id" in t for t in texts(message.blocks))
