"""The names the service layer writes and others read: outbox kinds, which tell the workers what
to carry out (`bot.slack.delivery`, `bot.crm.writeback`), and the audit kinds that `/routing why`,
the digest and the card read back."""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    OFFER_CARD = "slack.offer_card"  # post the card for a new offer, in the rep's DM
    TEAM_CARD = "slack.team_card"  # post its copy in the team's channel
    SETTLE_CARD = "slack.settle_card"  # the offer was claimed or moved: update its card
    QUEUE_POST = "slack.queue_post"  # a lead went to a queue: post it to the queue's channel
    SALESFORCE_OWNER = "crm.set_owner.salesforce"  # write the owner back to the CRM record
    HUBSPOT_OWNER = "crm.set_owner.hubspot"
    HUBSPOT_CONTACT = "crm.take_contact.hubspot"  # a contact HubSpot announced: fetch and route
    REMINDER = "slack.reminder"  # half the SLA has passed: nudge the rep
    # a lead went to a queue as nobody took it (or its queue's channel refused it): a manager
    MANAGER_ALERT = "slack.manager_alert"
    CONTACT_REMINDER = "slack.contact_reminder"  # half the contact SLA has passed: nudge the rep
    CONTACT_MISSED = "slack.contact_missed"  # a claimed lead was not touched in time: a manager
    DIGEST = "slack.digest"  # a manager's scheduled digest
    BACKLOG = "slack.backlog"  # leads arrived while no Slack app ran: one word to a manager
    POLICY_REFUSED = "slack.policy_refused"  # a policy file failed its checks: tell the managers
    # a manager's digest (backlog word, policy refused) could not reach them: the others hear
    MANAGER_UNREACHABLE = "slack.manager_unreachable"
    ABSENCE_TOLD = "slack.absence_told"  # a rep someone else marked out or back: told in a DM


OWNER_WRITE_KINDS = {"salesforce": OutboxKind.SALESFORCE_OWNER, "hubspot": OutboxKind.HUBSPOT_OWNER}

BACKLOG = "backlog"  # in a rep card's payload: queued where no card delivery ran
# In a manager alert's payload: every manager the same alert went to at once. One whose DM
# refuses it is replaced by the policy's other managers, never by these (they have it).
ALERTED = "alerted"
# In a manager alert's (or contact miss's) payload: the manager it was sent instead of. One of
# these that cannot go either is passed on no further.
INSTEAD_OF = "instead_of"

# Audit kinds (beside "routed", "rerouted", "claimed", "rejected", "assigned" and the like).
SLA_MISSED = "sla_missed"  # a rep let an offer's SLA lapse (data: rep, offer_id)
# A rep let the contact SLA of a lead they claimed lapse (data: rep, offer_id, due_at, and
# touched_at when the first touch came late)
CONTACT_MISSED = "contact_missed"
CARD_UNDELIVERABLE = "card_undeliverable"  # the rep's card could not be posted
# A queued lead's post could not go to its queue's channel: its managers were told in DMs
QUEUE_POST_UNDELIVERABLE = "queue_post_undeliverable"
# A manager could not be told of a queued lead in Slack: the policy's other managers were
MANAGER_NOT_TOLD = "manager_not_told"
REP_LEFT_POLICY = "rep_left_policy"  # the policy activated has no such rep: their offer moved
CRM_OWNER_SET = "crm_owner_set"  # the CRM record's owner is now the rep
CRM_WRITE_FAILED = "crm_write_failed"  # the owner could not be written, and will not be
CRM_WRITE_RETRYING = "crm_write_retrying"  # the owner's first write failed; tried again
