"""Account lookups made in advance (a long replay's second process) answer the engine exactly as
the index would, survive the trip through a pipe, and are never given to the wrong lead."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from routing.accounts import AccountIndex
from routing.engine import route
from routing.lookups_in_advance import Answers, look_up, pack, unpack
from routing.model import Account, Lead
from routing.policy import parse_policy

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
ACCOUNTS = [
    Account("A1", "Initech", "initech.com", "ben", country="US", state="TX"),
    Account("A2", "Umbrella Biotech", None, "ben", country="DE"),
    Account("A3", "Umbrella Biotech", None, "cy", country="FR"),
    Account("A4", "Globex Logistics", "globex.example", None),
]
POLICY = parse_policy(
    "reps:\n  - {id: ann}\n  - {id: ben}\n  - {id: cy}\n"
    "rules:\n  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
    "  - {name: Ann, assign: {rep: ann}}\n",
    source="owners.yml",
)
LEADS = [
    Lead("L-1", email="pm@initech.com"),
    Lead("L-2", company="Umbrela Biotech GmbH", country="Germany"),
    Lead("L-3", company="Umbrella Biotech"),  # two namesakes: ambiguous
    Lead("L-4", company="Globex Freight", email="x@freight.example"),
    Lead("L-5", company="Nobody Known", email="a@gmail.com", website="https://gmail.com"),
    Lead("L-6", company="Initech", country="us", state="TX", email="z@initech.io"),
    Lead("L-7"),
    Lead("L-8", company="Initech", country="US", state="Texas", email="y@initech.io"),
]


@pytest.mark.parametrize("lead", LEADS, ids=[lead.id for lead in LEADS])
def test_a_decision_on_a_lookup_made_in_advance_and_piped_is_the_indexs_decision(
    lead: Lead,
) -> None:
    index = AccountIndex(ACCOUNTS)
    looked = look_up(lead, index, threshold=POLICY.fuzzy_threshold)
    piped = unpack(pickle.loads(pickle.dumps(pack(looked))), {a.id: a for a in ACCOUNTS})
    assert piped == looked
    answers = Answers(lambda: pytest.fail("no lead here needs the fallback"))
    answers.next(piped)

    assert route(lead, policy=POLICY, now=NOW, accounts=answers) == route(
        lead, policy=POLICY, now=NOW, accounts=index
    )


def test_an_answer_made_for_another_lead_is_not_given_the_fallback_answers() -> None:
    index = AccountIndex(ACCOUNTS)
    answers = Answers(lambda: index)
    answers.next(look_up(LEADS[0], index, threshold=90))  # Initech's, by domain

    decided = route(LEADS[1], policy=POLICY, now=NOW, accounts=answers)

    assert decided == route(LEADS[1], policy=POLICY, now=NOW, accounts=index)
    assert decided.account is not None and decided.account.account.id == "A2"
    assert answers.misplaced == 1


def test_a_lead_without_an_answer_is_looked_up_in_the_fallback_built_once() -> None:
    built: list[AccountIndex] = []

    def fallback() -> AccountIndex:
        built.append(AccountIndex(ACCOUNTS))
        return built[-1]

    answers = Answers(fallback)
    for lead in LEADS:
        answers.next(None)
        decided = route(lead, policy=POLICY, now=NOW, accounts=answers)
        assert decided == route(lead, policy=POLICY, now=NOW, accounts=AccountIndex(ACCOUNTS))
    assert len(built) == 1


def test_a_lookup_naming_an_account_not_read_here_is_not_unpacked() -> None:
    looked = look_up(LEADS[0], AccountIndex(ACCOUNTS), threshold=90)
    assert unpack(pack(looked), {a.id: a for a in ACCOUNTS if a.id != "A1"}) is None
