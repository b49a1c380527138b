"""The reject modal: what it asks, and the reason read back from its answer."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.views import View

from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.modals import reject_modal, reject_reason
from routing.model import REJECT_REASONS

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
    named, reason, note = modal["blocks"]
    assert named["elements"][0]["elements"] == [
        {"type": "text", "text": "Ada & <!channel>", "style": {"bold": True}}
    ]  # as written, in bold
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
