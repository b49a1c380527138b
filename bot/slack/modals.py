"""The reject modal: why a rep passes on a lead, asked before it goes to another rep."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import InputBlock, Option, PlainTextInputElement, RadioButtonsElement
from slack_sdk.models.views import View

from bot.slack.blocks import MAX_HEADER, button_value, literal, plain, rich
from bot.slack.ids import ActionId, BlockId, CallbackId
from routing.model import REJECT_REASONS

MAX_NOTE = 500


def reject_modal(lead_id: str, title: str) -> dict[str, Any]:
    # Both inputs are optional for Slack: the handler asks for a reason itself (`reject_reason`), so
    # a rep may give a choice, a note, or both.
    view = View(
        type="modal",
        callback_id=CallbackId.REJECT_MODAL,
        private_metadata=button_value(lead_id),
        title=plain("Reject lead", 24),
        submit=plain("Reject", 24),
        close=plain("Cancel", 24),
        blocks=[
            rich([[literal(title.strip() or "New lead", MAX_HEADER, bold=True)]]),
            InputBlock(
                block_id=BlockId.REJECT_REASON,
                label=plain("Why are you passing on this lead?", 2000),
                optional=True,
                element=RadioButtonsElement(
                    action_id=ActionId.REJECT_REASON,
                    options=[Option(value=r, text=plain(r, 75)) for r in REJECT_REASONS],
                ),
            ),
            InputBlock(
                block_id=BlockId.REJECT_NOTE,
                label=plain("Anything the next rep or RevOps should know?", 2000),
                optional=True,
                element=PlainTextInputElement(
                    action_id=ActionId.REJECT_NOTE, multiline=True, max_length=MAX_NOTE
                ),
            ),
        ],
    )
    return view.to_dict()


def reject_reason(state_values: Mapping[str, Any]) -> str | None:
    """The reason from a reject modal's `view.state.values`; None when the rep gave neither."""
    choice_state = state_values.get(BlockId.REJECT_REASON, {}).get(ActionId.REJECT_REASON, {})
    selected = choice_state.get("selected_option") or {}
    choice = (selected.get("value") or "").strip()
    note_state = state_values.get(BlockId.REJECT_NOTE, {}).get(ActionId.REJECT_NOTE, {})
    note = (note_state.get("value") or "").strip()
    if choice and note:
        return f"{choice}: {note}"
    return choice or note or None
