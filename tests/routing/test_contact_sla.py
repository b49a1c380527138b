"""The contact SLA in the policy (`sla.contact`, `sla.contact_by_source`, a rule's `contact_sla`,
`sla.reassign_on_contact_miss`), its problems with their lines, and its deadlines on the SLA's
clock."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from routing.contact_sla import contact_deadlines, contact_sla_seconds
from routing.policy import PolicyError, parse_policy

POLICY = """\
reps:
  - {id: nia, timezone: America/New_York, hours: "09:00-17:00"}
teams:
  east: {members: [nia]}
rules:
  - name: Demos
    when: {product: demo}
    assign: {team: east}
    contact_sla: 30m
  - name: Everyone
    assign: {team: east}
"""


def policy_of(sla: str, text: str = POLICY) -> str:
    return f"{text}sla:\n{textwrap.indent(textwrap.dedent(sla), '  ')}"


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="routing.yml")
    return [p.format("routing.yml") for p in caught.value.problems]


def test_a_policy_without_a_contact_sla_has_none() -> None:
    policy = parse_policy(POLICY.replace("    contact_sla: 30m\n", ""))
    assert policy.sla.contact is None and not policy.sla.reassign_on_contact_miss
    assert contact_sla_seconds(policy, rule="Everyone", source="webinar") is None


def test_the_rules_contact_sla_comes_first_then_the_sources_then_the_default() -> None:
    policy = parse_policy(
        policy_of(
            """\
            contact: 4h
            contact_by_source: {" Webinar ": 1d}
            reassign_on_contact_miss: true
            """
        )
    )
    assert policy.sla.reassign_on_contact_miss
    assert contact_sla_seconds(policy, rule="Demos", source="webinar") == 30 * 60
    assert contact_sla_seconds(policy, rule="Everyone", source="WEBINAR") == 86400
    assert contact_sla_seconds(policy, rule="Everyone", source="ads") == 4 * 3600
    # A rule no longer in the policy (renamed since the lead was routed): its source's, or the
    # default.
    assert contact_sla_seconds(policy, rule="Old name", source=None) == 4 * 3600


def test_a_contact_sla_that_is_not_a_duration_is_reported_with_its_line() -> None:
    text = policy_of(
        """\
        contact: two hours
        contact_by_source: {webinar: 0m}
        """
    ).replace("contact_sla: 30m", "contact_sla: soon")
    assert problems_of(text) == [
        "routing.yml:9:5: rules[0].contact_sla: 'soon' is not a duration; write it like 30s, "
        "5m, 1h or 2d",
        "routing.yml:13:3: sla.contact: 'two hours' is not a duration; write it like 30s, 5m, "
        "1h or 2d",
        "routing.yml:14:23: sla.contact_by_source.webinar: '0m' is not a positive duration",
    ]


def test_reassigning_on_a_contact_miss_without_a_contact_sla_is_an_error_with_its_line() -> None:
    text = policy_of("reassign_on_contact_miss: true\n").replace("    contact_sla: 30m\n", "")
    assert problems_of(text) == [
        "routing.yml:12:3: sla.reassign_on_contact_miss: there is no contact SLA to miss: set "
        "`sla.contact` (the time from claim to first touch, e.g. 4h), `sla.contact_by_source` "
        "or a rule's `contact_sla`",
    ]


def test_one_rules_contact_sla_is_enough_to_reassign_on_a_miss() -> None:
    policy = parse_policy(policy_of("reassign_on_contact_miss: true\n"))
    assert policy.sla.reassign_on_contact_miss
    assert contact_sla_seconds(policy, rule="Everyone", source=None) is None


def test_on_the_wall_clock_the_first_touch_is_due_the_contact_sla_after_the_claim() -> None:
    policy = parse_policy(policy_of("contact: 2h\n"))
    claimed = datetime(2026, 12, 18, 21, 30, tzinfo=UTC)  # Friday 16:30 in New York
    due, remind = contact_deadlines(policy, policy.reps["nia"], claimed, 7200)
    assert (due, remind) == (claimed + timedelta(hours=2), claimed + timedelta(hours=1))


def test_on_the_business_clock_a_claim_on_friday_evening_falls_due_on_monday_morning() -> None:
    policy = parse_policy(policy_of("contact: 2h\nclock: business\n"))
    claimed = datetime(2026, 12, 18, 21, 30, tzinfo=UTC)  # Friday 16:30, her day ends at 17:00
    due, remind = contact_deadlines(policy, policy.reps["nia"], claimed, 7200)
    monday = datetime(2026, 12, 21, 14, 0, tzinfo=UTC)  # 09:00 in New York
    assert due == monday + timedelta(hours=1, minutes=30)
    assert remind == monday + timedelta(minutes=30)


def test_a_rep_who_left_the_policy_counts_wall_time_and_a_one_second_sla_has_no_reminder() -> None:
    policy = parse_policy(policy_of("contact: 2h\nclock: business\n"))
    claimed = datetime(2026, 12, 18, 21, 30, tzinfo=UTC)
    assert contact_deadlines(policy, None, claimed, 7200)[0] == claimed + timedelta(hours=2)
    assert contact_deadlines(policy, None, claimed, 1) == (claimed + timedelta(seconds=1), None)
