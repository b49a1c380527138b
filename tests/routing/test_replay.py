"""The replay's core: stored leads routed again under a policy, on the state it would have
left, with history's closings, absences and opening state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.accounts import AccountIndex
from routing.leads import parse_lead
from routing.model import Account, Outcome, OutOfOffice
from routing.policy import Policy, parse_policy
from routing.replay import Absence, HeldLead, Opening, Replay, Routed, StoredLead
from routing.replay_summary import EXAMPLES, ReplaySummary, ranked
from routing.simulation import Simulation

MONDAY = datetime(2026, 11, 16, 9, tzinfo=UTC)
QUEUED = Routed(Outcome.QUEUED, rule=None, unmatched=True)


def policy_of(text: str) -> Policy:
    return parse_policy(text, source="test.yml")


# Three reps who always work, one open lead each at most, one round-robin team.
PAIR = policy_of(
    "reps:\n  - {id: ann, capacity: 1}\n  - {id: ben, capacity: 1}\n  - {id: cat, capacity: 1}\n"
    "teams:\n  pool: {members: [ann, ben], distribution: round_robin}\n"
    "  other: {members: [cat], distribution: round_robin}\n"
    "accounts: {sticky: true}\n"
    "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
)


# The same, without capacities.
ROOMY = policy_of(
    "reps:\n  - {id: ann}\n  - {id: ben}\n  - {id: cat}\n"
    "teams:\n  pool: {members: [ann, ben], distribution: round_robin}\n"
    "  other: {members: [cat], distribution: round_robin}\n"
    "accounts: {sticky: true}\n"
    "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
)


def stored(
    lead_id: str, at: datetime, released_at: datetime | None = None, **fields: str
) -> StoredLead:
    lead = parse_lead({"id": lead_id, "email": f"buyer@{lead_id.lower()}.example", **fields})
    return StoredLead(lead, at, QUEUED, released_at)


def test_replaying_the_policy_that_decided_moves_nothing() -> None:
    policy = policy_of(
        "reps:\n  - {id: ann, hours: '09:00-12:00', timezone: UTC}\n  - {id: ben}\n  - {id: cat}\n"
        "teams:\n  pool: {members: [ann, ben, cat], distribution: least_loaded}\n"
        "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
    )
    history = Simulation(policy, MONDAY)
    leads = []
    for n in range(12):
        at = MONDAY + timedelta(hours=n)
        lead = parse_lead({"id": f"L{n}", "email": f"p{n}@firm{n}.example"})
        leads.append(StoredLead(lead, at, Routed.of(history.route(lead, at), policy.version)))

    replayed = list(Replay(policy, start=MONDAY).run(leads))

    assert not any(r.moved for r in replayed)
    assert [r.after for r in replayed] == [s.before for s in leads]
    # Ann works 09:00-12:00: the leads of the afternoon went to the others.
    assert {r.after.rep for r in replayed[3:]} == {"ben", "cat"}


def test_each_lead_is_routed_at_its_arrival_with_its_sla_from_then() -> None:
    policy = policy_of(
        "reps:\n  - {id: ann, hours: '09:00-17:00', timezone: UTC}\n"
        "rules:\n  - {name: Ann, assign: {rep: ann}}\nsla: {default: 15m}\n"
    )
    morning, night = MONDAY, MONDAY + timedelta(hours=12)
    replay = Replay(policy, start=MONDAY)

    early = replay.route(stored("A", morning))
    late = replay.route(stored("B", night))

    assert early.after.rep == "ann" and early.sla_due_at == morning + timedelta(minutes=15)
    assert late.after.outcome is Outcome.QUEUED and late.sla_due_at is None


def test_a_lead_holds_its_new_rep_until_it_closed_in_history() -> None:
    replay = Replay(PAIR, start=MONDAY)
    first = replay.route(stored("A", MONDAY, released_at=MONDAY + timedelta(hours=2)))
    second = replay.route(stored("B", MONDAY + timedelta(hours=1)))
    # Both reps are full until A closes; then ann, whose lead it was, takes the next one.
    full = replay.route(stored("C", MONDAY + timedelta(hours=1, minutes=30)))
    after_close = replay.route(stored("D", MONDAY + timedelta(hours=3)))

    assert (first.after.rep, second.after.rep) == ("ann", "ben")
    assert full.after.outcome is Outcome.QUEUED
    assert after_close.after.rep == "ann"
    assert replay.simulation.loads == {"ann": 1, "ben": 1}


def test_a_lead_open_at_the_window_start_keeps_its_rep_busy_until_it_closed() -> None:
    closes = MONDAY + timedelta(hours=2)
    opening = Opening(held=[HeldLead("ann", "OLD", MONDAY - timedelta(days=3), released_at=closes)])
    replay = Replay(PAIR, start=MONDAY, opening=opening)

    busy = [replay.route(stored(f"A{n}", MONDAY + timedelta(minutes=n))) for n in range(2)]
    at_the_close = replay.route(stored("B", closes))
    freed = replay.route(stored("C", closes + timedelta(seconds=1)))

    assert [r.after.where for r in busy] == ["ben", "(queued)"]
    # A lead that arrived at the very moment the other closed came first, as far as anyone knows.
    assert at_the_close.after.outcome is Outcome.QUEUED
    assert freed.after.rep == "ann"


def test_an_account_held_before_the_window_keeps_its_leads_until_its_leads_closed() -> None:
    accounts = AccountIndex([Account("acme", "Acme", "acme.com")])
    closes = MONDAY + timedelta(hours=1)
    held = HeldLead("cat", "OLD", MONDAY - timedelta(days=1), "acme", "old@acme.com", closes)
    replay = Replay(ROOMY, start=MONDAY, accounts=accounts, opening=Opening(held=[held]))

    sticky = replay.route(stored("A", MONDAY, email="cto@acme.com", released_at=closes))
    later = replay.route(stored("B", closes + timedelta(minutes=1), email="cfo@acme.com"))

    assert (sticky.after.rep, sticky.after.rule) == ("cat", "Sticky account")
    assert (later.after.rep, later.after.rule) == ("ann", "Everyone")
    assert replay.simulation.account_reps == {"acme": ["ann"]}


def test_a_person_held_before_the_window_is_let_go_when_their_lead_closed() -> None:
    roomy = policy_of(
        "reps:\n  - {id: ann}\n  - {id: ben}\n"
        "teams:\n  pool: {members: [ann, ben], distribution: round_robin}\n"
        "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
    )
    closes = MONDAY + timedelta(hours=1)
    held = HeldLead("ben", "OLD", MONDAY - timedelta(days=1), None, "pat@firm.example", closes)
    replay = Replay(roomy, start=MONDAY, opening=Opening(held=[held]))

    same = replay.route(stored("A", MONDAY, email="pat@firm.example", released_at=closes))
    later = replay.route(stored("B", closes + timedelta(minutes=1), email="pat@firm.example"))

    assert same.after.rep == "ben" and same.after.rule == "Same person"
    assert later.after.rep == "ann" and later.after.rule == "Everyone"
    assert replay.simulation.person_leads == {"pat@firm.example": (("ann", "B"),)}


def test_absences_recorded_then_keep_a_rep_from_leads_while_away() -> None:
    roomy = policy_of(
        "reps:\n  - {id: ann}\n  - {id: ben}\n"
        "teams:\n  pool: {members: [ann, ben], distribution: least_loaded}\n"
        "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
    )
    away = OutOfOffice(reason="vacation", since=MONDAY - timedelta(days=1))
    absences = [
        Absence(MONDAY - timedelta(days=1), "ann", away),
        Absence(MONDAY + timedelta(hours=2), "ann", None),
    ]
    replay = Replay(roomy, start=MONDAY, opening=Opening(absences=absences))

    while_away = [replay.route(stored(f"A{n}", MONDAY + timedelta(minutes=n))) for n in range(3)]
    back = replay.route(stored("B", MONDAY + timedelta(hours=3)))

    assert [r.after.rep for r in while_away] == ["ben", "ben", "ben"]
    assert back.after.rep == "ann"


def test_an_absence_with_an_end_ends_on_its_own() -> None:
    left, returns = MONDAY - timedelta(hours=1), MONDAY + timedelta(hours=1)
    away = OutOfOffice(until=returns, since=left)
    only_ann = policy_of("reps:\n  - {id: ann}\nrules:\n  - {name: Ann, assign: {rep: ann}}\n")
    opening = Opening(absences=[Absence(left, "ann", away)])
    replay = Replay(only_ann, start=MONDAY, opening=opening)

    assert replay.route(stored("A", MONDAY)).after.outcome is Outcome.QUEUED
    assert replay.route(stored("B", returns)).after.rep == "ann"


def test_a_rotation_goes_on_after_the_last_rep_before_the_window() -> None:
    replay = Replay(PAIR, start=MONDAY, opening=Opening(last_reps={"pool": "ann"}))

    assert replay.route(stored("A", MONDAY)).after.rep == "ben"


def test_a_replay_in_one_moment_with_nothing_closing_is_a_simulation() -> None:
    policy = policy_of(
        "reps:\n  - {id: ann, capacity: 3}\n  - {id: ben, weight: 2}\n  - {id: cat}\n"
        "teams:\n  a: {members: [ann, ben], distribution: weighted}\n"
        "  b: {members: [ben, cat], distribution: least_loaded}\n"
        "accounts: {sticky: true}\n"
        "rules:\n"
        "  - {name: Owner, when: {account.owner: {exists: true}}, assign: account_owner}\n"
        "  - {name: Big, when: {employees: {gte: 500}}, assign: {team: a}}\n"
        "  - {name: Rest, assign: {team: b}}\n"
    )
    accounts = AccountIndex(
        [Account("A1", "Acme", "acme.com", "cat"), Account("A2", "Globex", "globex.com")]
    )
    raws = [
        {
            "id": f"L{n}",
            "email": f"p{n % 7}@{('acme.com', 'globex.com', f'f{n}.io')[n % 3]}",
            "employees": (n * 137) % 1000,
        }
        for n in range(40)
    ]
    simulation = Simulation(policy, MONDAY, accounts)
    expected = [simulation.route(parse_lead(raw)) for raw in raws]
    replay = Replay(policy, start=MONDAY, accounts=accounts)

    replayed = [replay.route(StoredLead(parse_lead(raw), MONDAY, QUEUED)) for raw in raws]

    assert [r.after for r in replayed] == [Routed.of(d, policy.version) for d in expected]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.one_of(st.none(), st.integers(0, 80))),
        min_size=1,
        max_size=40,
    )
)
def test_loads_are_the_leads_given_and_not_yet_closed(spans: list[tuple[int, int | None]]) -> None:
    """Whatever the arrivals and closings, each rep's load when a lead arrives is the number of
    leads the replay gave them that had not closed before then."""
    roomy = policy_of(
        "reps:\n  - {id: ann}\n  - {id: ben}\n"
        "teams:\n  pool: {members: [ann, ben], distribution: least_loaded}\n"
        "rules:\n  - {name: Everyone, assign: {team: pool}}\n"
    )
    replay = Replay(roomy, start=MONDAY)
    given_to: list[tuple[str, datetime | None]] = []
    for n, (arrives, lasts) in enumerate(sorted(spans, key=lambda span: span[0])):
        at = MONDAY + timedelta(minutes=arrives)
        closes = None if lasts is None else at + timedelta(minutes=lasts)
        replayed = replay.route(stored(f"L{n}", at, released_at=closes))
        open_then = {
            rep: sum(1 for who, until in given_to if who == rep and (until is None or until >= at))
            for rep in ("ann", "ben")
        }
        assert {rep: replay.simulation.loads[rep] for rep in open_then} == {
            rep: count + (replayed.after.rep == rep) for rep, count in open_then.items()
        }
        given_to.append((replayed.after.rep or "", closes))


def test_the_summary_counts_the_moves_with_a_few_examples_each() -> None:
    summary = ReplaySummary()
    before = Routed(Outcome.ASSIGNED, "ann", "pool", "Everyone", sla_seconds=900)
    after = Routed(Outcome.ASSIGNED, "ben", "pool", "Everyone", sla_seconds=300)
    unmatched = Routed(Outcome.QUEUED, rule=None, unmatched=True)
    replay = Replay(PAIR, start=MONDAY)
    lead = replay.route(stored("X", MONDAY))
    for n in range(5):
        summary.add(type(lead)(f"L{n}", MONDAY, before, after))
    summary.add(type(lead)("Q", MONDAY, unmatched, before))
    summary.add(type(lead)("S", MONDAY, before, before))

    assert (summary.leads, summary.moved) == (7, 6)
    [((was, now), moves), *rest] = ranked(summary.reps)
    assert (was, now, moves.count) == ("ann", "ben", 5)
    assert moves.examples == [f"L{n}" for n in range(EXAMPLES)]
    assert [(key, m.count) for key, m in rest] == [(("(queued)", "ann"), 1)]
    assert summary.teams == {(None, "pool"): summary.teams[(None, "pool")]}
    assert summary.rules[(None, "Everyone")].examples == ["Q"]
    assert (summary.unmatched_before, summary.unmatched_after) == (1, 0)
    assert summary.assigned_before == {"ann": 6} and summary.assigned_after == {"ben": 5, "ann": 2}
    assert summary.reps_compared == ["ben", "ann"]  # the biggest change first
    assert {key: m.count for key, m in summary.slas.items()} == {(900, 300): 5, (None, 900): 1}
