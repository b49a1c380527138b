"""Account matching as the admin meets it: the evidence in the trace, ambiguous matches settled
by `accounts.on_ambiguous`, and the location counting for or against a name."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from routing.accounts import AccountIndex
from routing.decision import Decision, Stage
from routing.engine import route
from routing.leads import parse_lead
from routing.model import Account, Outcome
from routing.policy import Policy, PolicyError, parse_policy
from tests.routing.examples import EXAMPLES, example_policy

TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return example_policy()


def decide(policy: Policy, accounts: list[Account], **fields: Any) -> Decision:
    fields.setdefault("id", "L-1")
    fields.setdefault("email", "someone@example-lead.com")
    return route(parse_lead(fields), policy=policy, now=TUESDAY, accounts=AccountIndex(accounts))


def account_step(decision: Decision) -> str:
    (step,) = [s for s in decision.trace if s.stage is Stage.ACCOUNT]
    return f"{step.subject}: {step.detail}"


NOVA = [
    Account("A-HERON", "Nova Heron Semiconductors", owner="alice"),
    Account("A-CROWN", "Nova Crown Semiconductors", owner="bob"),
]
LURA = [
    Account("L-1", "Lura LLP", owner="alice"),
    Account("L-2", "Lura GmbH", owner="bob"),
]


def test_a_typo_match_names_the_words_that_agreed_and_their_weights(policy: Policy) -> None:
    d = decide(policy, NOVA, company="Nova Hreon Semiconductors")

    assert d.account is not None and d.account.account.id == "A-HERON"
    step = account_step(d)
    assert step.startswith("Nova Heron Semiconductors: matched by company name, score 9")
    assert "hreon ≈ heron (typo, 13.8)" in step
    assert "semiconductors (2.0)" in step
    assert "runner-up" not in step  # Nova Crown was never a candidate: its "crown" is missing


def test_a_longer_distinctive_word_is_another_company(policy: Policy) -> None:
    accounts = [*NOVA, Account("A-QUAVO", "Quavo Software Inc", owner="bob")]

    d = decide(policy, accounts, company="Quavojin Software")

    assert d.account is None
    assert account_step(d) == (
        "none: no account matched (domain example-lead.com, company 'Quavojin Software')"
    )


def test_the_same_name_in_another_industry_is_not_matched_and_the_closest_is_named(
    policy: Policy,
) -> None:
    accounts = [*NOVA, Account("A-QUAVO", "Quavo Software Inc", owner="bob")]

    d = decide(policy, accounts, company="Quavo Metals")

    assert d.account is None
    step = account_step(d)
    assert "closest 'Quavo Software Inc' 77.5: quavo (13.8)" in step
    assert "metals another industry, lead (2.0), software another industry, account (2.0)" in step


def test_an_exact_name_says_the_words_are_the_same(policy: Policy) -> None:
    d = decide(policy, NOVA, company="NOVA HERON SEMICONDUCTORS, INC.")

    assert d.account is not None and d.account.score == 100
    assert account_step(d).endswith("matched by company name, score 100: the same words")


def test_namesakes_are_ambiguous_and_by_default_the_rules_route_without_an_account(
    policy: Policy,
) -> None:
    d = decide(policy, LURA, company="Lura", country="US", employees=50)

    assert d.account is None
    assert d.rule != "Existing account owner"
    step = account_step(d)
    assert step == (
        "ambiguous: 'Lura LLP' (L-1, 100) or 'Lura GmbH' (L-2, 100) are nearly as likely; "
        "routed by the rules without an account (accounts.on_ambiguous: rules); "
        "evidence for 'Lura LLP': lura (13.8)"
    )


def test_namesakes_wait_in_the_fallback_queue_when_the_policy_says_queue(
    policy: Policy,
) -> None:
    queueing = replace(policy, on_ambiguous="queue")

    d = decide(queueing, LURA, company="Lura", country="US", employees=50)

    assert d.outcome is Outcome.QUEUED
    assert d.queue == policy.fallback.name and d.fallback_used
    assert d.reason == f"Ambiguous account (Lura LLP or Lura GmbH) → {policy.fallback.name} queue"
    assert "the fallback queue picks (accounts.on_ambiguous: queue)" in account_step(d)


def test_the_account_in_the_leads_country_wins_over_its_namesake_abroad(policy: Policy) -> None:
    accounts = [
        Account("L-US", "Lura Inc", owner="alice", country="US"),
        Account("L-DE", "Lura GmbH", owner="bob", country="DE"),
    ]

    german = decide(policy, accounts, company="Lura", country="Germany")
    american = decide(policy, accounts, company="Lura", country="United States")
    unplaced = decide(policy, accounts, company="Lura")

    assert german.account is not None and german.account.account.id == "L-DE"
    assert american.account is not None and american.account.account.id == "L-US"
    assert "same country DE / DE (1.5)" in account_step(german)
    assert unplaced.account is None and account_step(unplaced).startswith("ambiguous")


def test_another_country_counts_against_but_a_rare_name_still_matches(policy: Policy) -> None:
    accounts = [Account("L-DE", "Lura GmbH", owner="bob", country="DE")]

    d = decide(policy, accounts, company="Lura", country="FR")

    assert d.account is not None and d.account.score == 90.2
    assert "other country FR / DE (1.5)" in account_step(d)


def test_on_ambiguous_accepts_only_rules_or_queue() -> None:
    text = (EXAMPLES / "routing.yml").read_text()
    assert "  on_ambiguous: rules " in text
    good = text.replace("  on_ambiguous: rules ", "  on_ambiguous: queue ", 1)
    bad = text.replace("  on_ambiguous: rules ", "  on_ambiguous: coin flip ", 1)

    assert parse_policy(good).on_ambiguous == "queue"
    with pytest.raises(PolicyError) as refused:
        parse_policy(bad)
    assert [problem.format("routing.yml") for problem in refused.value.problems] == [
        "routing.yml:85:3: accounts.on_ambiguous: must be 'rules' or 'queue'; got 'coin flip'"
    ]


def test_a_namesake_known_to_be_in_the_leads_country_wins_over_one_of_unknown_place(
    policy: Policy,
) -> None:
    accounts = [
        Account("L-1", "Lura LLP", owner="alice"),
        Account("L-DE", "Lura GmbH", owner="bob", country="DE"),
    ]

    d = decide(policy, accounts, company="Lura", country="DE")

    assert d.account is not None and d.account.account.id == "L-DE"
    assert account_step(d).endswith(
        "score 100: lura (13.8), same country DE / DE (1.5); runner-up 'Lura LLP' 100"
    )


@pytest.mark.parametrize(
    ("lead_state", "account_state"),
    [("California", "California"), ("CA", "California"), ("california", "CA")],
)
def test_a_us_state_written_as_a_name_or_a_code_on_either_side_is_the_same_state(
    policy: Policy, lead_state: str, account_state: str
) -> None:
    """Accounts keep their state as written (a CRM's "California"); a lead's is read as its
    postal code. Either way round, one state agrees, and the namesake elsewhere loses."""
    accounts = [
        Account("L-CA", "Lura Inc", owner="alice", country="US", state=account_state),
        Account("L-TX", "Lura LLC", owner="bob", country="US", state="Texas"),
    ]

    d = decide(policy, accounts, company="Lura", country="US", state=lead_state)

    assert d.account is not None and d.account.account.id == "L-CA"
    assert "same state" in account_step(d) and "other state" not in account_step(d)
