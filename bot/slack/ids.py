"""Every Slack id leadrouter sends or listens for, named once."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    CLAIM = "claim_lead"
    REJECT = "reject_lead"
    MARK_OOO = "mark_ooo"
    HOME_AWAY = "home_go_away"  # App Home: "I'm out" toggle, on
    HOME_BACK = "home_come_back"  # App Home: "I'm back" toggle, off
    REJECT_REASON = "reject_reason_choice"  # in the reject modal
    REJECT_NOTE = "reject_reason_note"  # in the reject modal
    ASSIGN = "assign_lead"  # a user picker on a queued lead (queue posts, digests)


class CallbackId(StrEnum):
    REJECT_MODAL = "reject_lead_modal"


class BlockId(StrEnum):
    CARD_ACTIONS = "lead_actions"
    CARD_CONTACT = "lead_contact"  # the lead's e-mail, phone and website, as links
    REJECT_REASON = "reject_reason"
    REJECT_NOTE = "reject_note"
    # A queued lead's Assign picker sits in a block whose id names the lead: `assign:<lead id>`.
    ASSIGN_PREFIX = "assign:"
