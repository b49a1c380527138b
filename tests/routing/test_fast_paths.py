"""The shortcuts the router takes for speed give the answers of the plain definitions they replace.

Each test names the shortcut (a gate on a condition, a fold plan, a byte table, a cached step) and
checks it against the slower, obvious way of computing the same thing.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import conditions as conditions_module
from routing import domains, geo
from routing import normalize as normalize_module
from routing import plan as plan_module
from routing import targets as targets_module
from routing.accounts import AccountIndex, choose_keys
from routing.company_names import (
    _keep_marks,
    _tokens,
    blocking_keys,
    company_key,
    name_blocking_keys,
    normalise_name,
)
from routing.condition_compiler import compile_condition
from routing.conditions import LEAD_FIELDS, fold
from routing.decision import Decision, RoutingState
from routing.distribution import rotation_order
from routing.engine import route
from routing.freemail import email_domain_type, is_disposable
from routing.geo import default_region, normalize_country
from routing.leads import parse_lead
from routing.model import Account, AccountMatch, OutOfOffice
from routing.name_evidence import name_score
from routing.normalize import _LEAD_FACTS, _NO_ACCOUNT, normalize
from routing.policy import Policy, parse_policy

POLICY_TEXT = textwrap.dedent(
    """\
    reps:
      - {id: ann, timezone: America/New_York, hours: "09:00-17:00"}
      - {id: ben, timezone: America/New_York, skills: [french]}
      - {id: cat, timezone: Europe/Paris, hours: "09:00-17:00", skills: [french]}
    teams:
      na: {members: [ann, ben, cat], distribution: least_loaded}
      rr: {members: [ann, ben, cat]}
    qualify:
      - name: Students
        when: {title: {contains: student}}
        outcome: disqualified
    rules:
      - name: Quebec
        when: {country: CA, state: [QC], fields.plan: [pro, enterprise]}
        assign: {team: na, skill: french}
      - name: Owned
        when: {account.tier: [Enterprise, Growth], account.owner: {exists: true}}
        assign: account_owner
      - name: North America
        when: {region: NA}
        assign: {team: rr}
    """
)
POLICY = parse_policy(POLICY_TEXT)


def _wanted_folded(values: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """What `Facts.folded` is by definition: the facts some condition reads, folded."""
    return {key: fold(value) for key, value in values.items() if key in wanted}


# --- normalisation: the fold plan and the folded-string memo ------------------------------


def test_the_fold_plan_knows_every_fact_normalisation_writes() -> None:
    facts = normalize(parse_lead({"id": "L-1"}), POLICY)

    assert tuple(facts.values) == _LEAD_FACTS
    assert set(_LEAD_FACTS) == LEAD_FIELDS


TEXT = st.sampled_from(["", " ", "US", "us ", " Canada", "QC", "Pro", "ENTERPRISE", "Étudiant"])
CUSTOM_VALUE = st.one_of(TEXT, st.integers(-5, 5), st.booleans(), st.lists(TEXT, max_size=2))


@settings(max_examples=200)
@given(
    country=TEXT,
    state=TEXT,
    title=TEXT,
    employees=st.one_of(st.none(), st.integers(0, 20_000)),
    custom=st.dictionaries(st.sampled_from(["plan", "other", "x"]), CUSTOM_VALUE, max_size=3),
    tier=st.one_of(st.none(), TEXT),
    matched=st.booleans(),
    memo_size=st.sampled_from([0, 10_000]),
)
def test_folded_facts_are_the_facts_some_condition_reads_folded(
    country: str,
    state: str,
    title: str,
    employees: int | None,
    custom: dict[str, Any],
    tier: str | None,
    matched: bool,
    memo_size: int,
) -> None:
    raw: dict[str, Any] = {"id": "L-1", "country": country, "state": state, "title": title}
    raw.update(employees=employees, fields=custom)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(normalize_module, "_FOLDED_MAX", memo_size)
        facts = normalize(parse_lead(raw), POLICY)
        assert facts.folded == _wanted_folded(facts.values, POLICY.condition_fields)

        account = Account(id="a1", name="Acme", owner="ann", tier=tier)
        facts.add_account(AccountMatch(account, "name", 91.0) if matched else None)

    expected = _wanted_folded(facts.values, POLICY.condition_fields)
    if not matched:
        expected.update(_NO_ACCOUNT)  # an unmatched lead's account facts are all set, to None
    assert facts.folded == expected


@pytest.mark.parametrize(
    "email",
    [
        "a@acme.com",
        "a@gmail.com",
        "a@mailinator.com",
        "a@eu.mailinator.com",
        "a@21cn.com",  # on the disposable list, but a real provider: ours wins
        "a@sub.gmail.com",
        None,
    ],
)
def test_the_disposable_flag_is_what_is_disposable_says(email: str | None) -> None:
    facts = normalize(parse_lead({"id": "L-1", "email": email}), POLICY)
    domain = email.rpartition("@")[2] if email else None

    assert facts.values["email_disposable"] == (is_disposable(domain) if domain else None)
    assert facts.values["email_domain_type"] == email_domain_type(domain)


# --- conditions: gates --------------------------------------------------------------------

WHEN = st.sampled_from(
    [
        {"region": "NA"},
        {"region": ["NA", "EMEA"]},
        {"region": {"in": ["NA", 5, True]}},
        {"region": {"not_in": ["NA"]}},
        {"region": {"ne": "NA"}},
        {"region": 5},
        {"region": True},
        {"region": {"exists": True}},
        {"all": [{"region": "NA"}, {"segment": "SMB"}]},
        {"all": [{"region": {"exists": True}}, {"segment": "SMB"}]},
        {"region": "NA", "segment": ["SMB", "MidMarket"], "employees": {"gte": 10}},
        {"any": [{"region": "NA"}, {"segment": "SMB"}]},
        {"not": {"region": "NA"}},
    ]
)
FACT = st.sampled_from([None, "", "na", "emea", "NA", "smb", 5, 5.0, True, False, ["na"]])


@settings(max_examples=500)
@given(when=WHEN, region=FACT, segment=FACT, employees=FACT)
def test_a_condition_whose_gate_closes_misses_with_the_gates_miss(
    when: dict[str, Any], region: Any, segment: Any, employees: Any
) -> None:
    condition, errors = compile_condition(when)
    assert not errors
    facts = {"region": region, "segment": segment, "employees": employees}

    gate = condition.gate
    if gate is None:
        return
    actual = facts.get(gate.field)
    if actual is None or (type(actual) is str and actual not in gate.accepted):
        assert condition.check(facts) is gate.miss


def test_equalities_and_in_lists_have_gates_and_negations_do_not() -> None:
    def gate_of(when: dict[str, Any]) -> Any:
        return compile_condition(when)[0].gate

    assert gate_of({"region": "NA"}) is not None
    assert gate_of({"region": ["NA", "EMEA"]}) is not None
    assert gate_of({"region": "NA", "segment": "SMB"}) is not None
    assert gate_of({"region": {"not_in": ["NA"]}}) is None
    assert gate_of({"region": {"ne": "NA"}}) is None
    assert gate_of({"any": [{"region": "NA"}, {"segment": "SMB"}]}) is None
    assert gate_of({"employees": {"gte": 10}}) is None


# --- accounts: the ASCII byte table and the name match ------------------------------------

_JOINERS = re.compile(r"[.'’‘`´]")
_SEPARATORS = re.compile(r"[^\w\s]|_")


def _tokens_by_the_patterns(text: str) -> list[str]:
    text = text.replace("&", " and ")
    return _SEPARATORS.sub(_keep_marks, _JOINERS.sub("", text)).split()


def test_the_ascii_byte_table_splits_names_as_the_patterns_do() -> None:
    for first in range(128):
        for second in range(128):
            text = f"a{chr(first)}b{chr(second)}c"
            assert _tokens(text) == _tokens_by_the_patterns(text), repr(text)


@given(st.text(max_size=20))
def test_names_in_any_script_split_as_the_patterns_do(text: str) -> None:
    assert _tokens(text) == _tokens_by_the_patterns(text)


WORDS = ["acme", "acne", "global", "data", "dat", "labs", "lab", "north", "wind", "and", "co"]
NAME = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


def _best_by_brute_force(accounts: list[Account], company: str, threshold: float) -> Any:
    """The name match by its definition, scanning every account the chosen keys list.

    Equal sorted names are one candidate, the lowest id's, whose blocking keys are its own;
    the best is the highest score, then the shortest name, then the lowest id.
    """
    first_of: dict[str, tuple[Account, str]] = {}
    for account in sorted(accounts, key=lambda a: a.id):
        key = normalise_name(account.name)
        name = " ".join(sorted(key.split()))
        if name and name not in first_of:
            first_of[name] = (account, key)
    lead_key = normalise_name(company)
    if not lead_key:
        return None
    sizes: dict[str, int] = {}
    for _, key in first_of.values():
        for block in name_blocking_keys(key):
            sizes[block] = sizes.get(block, 0) + 1
    lead_blocks = name_blocking_keys(lead_key)
    chosen = set(choose_keys({block: sizes[block] for block in lead_blocks if block in sizes}))
    scored = [
        (-name_score(lead_key, key, sizes), len(name), account.id, account)
        for name, (account, key) in first_of.items()
        if name_blocking_keys(key) & chosen
    ]
    scored = [entry for entry in scored if -entry[0] >= threshold]
    if not scored:
        return None
    score, _, _, account = min(scored, key=lambda entry: entry[:3])
    return AccountMatch(account=account, method="name", score=round(-score, 1))


@settings(max_examples=300)
@given(
    names=st.lists(NAME, min_size=1, max_size=12),
    company=NAME,
    threshold=st.sampled_from([60.0, 75.5, 88.0, 100.0]),
)
def test_a_name_match_is_the_best_candidate_of_the_chosen_keys(
    names: list[str], company: str, threshold: float
) -> None:
    accounts = [Account(id=f"a{n:02d}", name=name) for n, name in enumerate(names)]
    index = AccountIndex(reversed(accounts))

    found = index.match(domain=None, company=company, threshold=threshold)

    expected = _best_by_brute_force(accounts, company, threshold)
    assert (found and (found.account, found.score)) == (
        expected and (expected.account, expected.score)
    )


def test_an_exact_name_under_a_later_key_beats_a_close_one_under_the_first() -> None:
    # The lead's rarest key is "p:acme", which lists "Acme Globa" (close) but not "Global Acme"
    # (the same words, so the same name once sorted): that one is under "t:acme" and "t:global".
    accounts = [
        Account(id="a1", name="Acme Globa"),
        *(Account(id=f"f{n:03d}", name=f"Filler{n} Acme") for n in range(10)),
        *(Account(id=f"g{n:03d}", name=f"Global Filler{n}") for n in range(10)),
        Account(id="z9", name="Global Acme"),
    ]
    found = AccountIndex(accounts).match(domain=None, company="Acme Global", threshold=80)

    assert found is not None
    assert (found.account.id, found.score) == ("z9", 100.0)


# --- the engine: steps shared within a minute ---------------------------------------------

NEW_YORK_1659 = datetime(2026, 11, 17, 21, 59, tzinfo=UTC)  # a Tuesday, 16:59 in New York


def _decide(policy: Policy, now: datetime, **raw: Any) -> Any:
    return route(parse_lead({"id": "L-1", **raw}), policy=policy, now=now, state=RoutingState())


def test_a_rep_off_hours_is_skipped_alike_by_every_decision_of_the_minute() -> None:
    lead = {"country": "US", "title": "CTO"}
    first = _decide(POLICY, NEW_YORK_1659, **lead)
    again = _decide(POLICY, NEW_YORK_1659, **lead)

    assert again.trace == first.trace
    assert again.reason == first.reason


def test_the_off_hours_memo_starts_afresh_each_minute() -> None:
    lead = {"country": "US", "title": "CTO"}
    at_1659 = _decide(POLICY, NEW_YORK_1659, **lead)
    at_1700 = _decide(POLICY, NEW_YORK_1659 + timedelta(minutes=1), **lead)
    fresh = parse_policy(POLICY_TEXT)

    assert at_1659.rep == "ann"
    assert at_1700.trace == _decide(fresh, NEW_YORK_1659 + timedelta(minutes=1), **lead).trace
    assert at_1700.rep != "ann"


# --- registrable domains: plain hosts under a flat TLD skip tldextract -------------------------


def _by_tldextract(host: str) -> str | None:
    parts = domains._extract(host)
    return f"{parts.domain}.{parts.suffix}" if parts.suffix and parts.domain else None


def test_suffix_rules_find_the_longest_listed_suffix_and_leave_the_irregular_to_tldextract() -> (
    None
):
    rules = domains.SuffixRules(["com", "uk", "co.uk", "jm", "*.jm", "jp", "!city.kobe.jp"])
    assert rules.registrable("www.acme.com") == "acme.com"
    assert rules.registrable("www.acme.co.uk") == "acme.co.uk"
    assert rules.registrable("acme.uk") == "acme.uk"
    assert rules.registrable("co.uk") is None  # a suffix itself has no registrable domain
    assert rules.registrable("acme.com.jm") is domains.UNKNOWN  # a wildcard rule's TLD
    assert rules.registrable("a.city.kobe.jp") is domains.UNKNOWN  # an exception's TLD
    assert rules.registrable("acme.example") is domains.UNKNOWN  # not listed at all
    assert rules.registrable("xn--mller-kva.com") is domains.UNKNOWN  # punycode
    assert rules.registrable("acme.com:8080") is domains.UNKNOWN  # not a plain name


def test_every_listed_suffix_gives_what_tldextract_gives() -> None:
    for suffix in sorted(domains._extract.tlds):
        tail = suffix.lstrip("*.!")
        for host in (f"acme.{tail}", f"www.eu.acme.{tail}", tail):
            assert domains.registrable_domain.__wrapped__(host) == _by_tldextract(host), host


_LABEL = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(
    labels=st.lists(_LABEL, min_size=0, max_size=4),
    suffix=st.sampled_from(sorted(domains._extract.tlds)),
)
def test_any_host_gets_the_registrable_domain_tldextract_gives(
    labels: list[str], suffix: str
) -> None:
    host = ".".join([*labels, suffix.lstrip("*.!")])
    assert domains.registrable_domain.__wrapped__(host) == _by_tldextract(host)


def test_only_hosts_under_a_wildcard_or_exception_name_are_left_to_tldextract() -> None:
    rules = domains.SuffixRules(["uk", "co.uk", "*.sch.uk", "jp", "co.jp", "!city.kobe.jp"])
    assert rules.registrable("www.acme.co.uk") == "acme.co.uk"  # under uk, not under sch.uk
    assert rules.registrable("acme.co.jp") == "acme.co.jp"
    assert rules.registrable("acme.kobe.jp") is domains.UNKNOWN  # under kobe.jp
    assert rules.registrable("a.school.sch.uk") is domains.UNKNOWN
    assert rules.registrable("sch.uk") is domains.UNKNOWN


_IRREGULAR = sorted(s.lstrip("*.!") for s in domains._extract.tlds if s.startswith(("*", "!")))


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(
        st.sampled_from(["acme", "www", "city", "sch", "co", "kobe", "nom"]), max_size=3
    ),
    suffix=st.sampled_from([*_IRREGULAR, "co.uk", "co.jp", "com.br", "uk", "jp", "br"]),
)
def test_hosts_under_the_tlds_of_irregular_rules_get_what_tldextract_gives(
    labels: list[str], suffix: str
) -> None:
    host = ".".join([*labels, suffix])
    assert domains.registrable_domain.__wrapped__(host) == _by_tldextract(host)


# --- accounts: the lookup's blocking keys -------------------------------------------------


@given(st.text(max_size=30))
def test_a_lookups_blocking_keys_are_the_names_blocking_keys(company: str) -> None:
    key = company_key(company)
    if key:
        assert blocking_keys(key, key.split()) == name_blocking_keys(key)


# --- conditions: the `matches` memo --------------------------------------------------------


def test_a_pattern_condition_remembers_what_searching_gives() -> None:
    condition, errors = compile_condition({"title": {"matches": r"\b(intern|job seeker)\b"}})
    assert not errors
    texts = ["Intern", "intern ", "Internal auditor", "Job Seeker", "CEO", "", 5, 5.0, "intern"]
    pattern = re.compile(r"\b(intern|job seeker)\b", re.IGNORECASE)
    for _ in range(2):  # the second time from the memo
        for text in texts:
            expected = pattern.search(text if isinstance(text, str) else str(int(text)))
            assert (condition.check({"title": text}) is None) == bool(expected), text


def test_a_pattern_condition_past_its_memo_bound_still_searches() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conditions_module, "_MATCHES_MEMO_MAX", 0)
        condition, _ = compile_condition({"title": {"matches": "^vp"}})
        assert condition.check({"title": "vp sales"}) is None
        assert condition.check({"title": "cfo"}) is not None


# --- the engine: rules laid out per policy ------------------------------------------------

RUNS_POLICY = parse_policy(
    textwrap.dedent(
        """\
        reps:
          - {id: ann, timezone: America/New_York}
        teams:
          na: {members: [ann]}
        qualify:
          - name: Free mail
            when: {email_domain_type: free, source: [webinar]}
            outcome: nurture
        rules:
          - name: NA big
            when: {region: NA, segment: [Enterprise, Strategic]}
            assign: {team: na}
          - name: NA healthcare
            when: {region: NA, industry: [Healthcare, Biotech]}
            assign: {team: na}
          - name: NA plan
            when: {region: [na], fields.plan: pro}
            assign: {team: na}
          - name: Quebec
            when: {country: CA, state: [QC]}
            assign: {team: na}
          - name: Britain
            when: {country: [GB, IE]}
            assign: {team: na}
          - name: Plan
            when: {fields.plan: [pro, enterprise]}
            assign: {team: na}
          - name: Plan again
            when: {fields.plan: enterprise, country: US}
            assign: {team: na}
          - name: Unfolded
            when: {fields.other: x}
            assign: {team: na}
          - name: Unfolded again
            when: {fields.other: [y]}
            assign: {team: na}
        """
    )
)


def _plain_steps(policy: Policy, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The qualify and rule steps by definition: every condition checked in full, in order."""
    folded = _wanted_folded(values, policy.condition_fields)
    steps: list[tuple[Any, ...]] = []
    for stage, rules in (("qualify", policy.qualify), ("rule", policy.rules)):
        for rule in rules:
            miss = rule.when.check(folded)
            if miss is None:
                steps.append((stage, rule.name, True, rule.when.description, None, None))
                return steps
            value = values.get(miss.field) if miss.field else None
            steps.append((stage, rule.name, False, miss.clause, miss.field, value))
    return steps


REGION_TEXT = st.sampled_from([None, "US", "us", "CA", "GB", "ie ", "DE", "Atlantis"])


@settings(max_examples=300)
@given(
    country=REGION_TEXT,
    state=st.sampled_from([None, "QC", "qc", "ON"]),
    employees=st.sampled_from([None, 5, 500, 5000, 50_000]),
    industry=st.sampled_from([None, "Healthcare", "biotech ", "Retail"]),
    email=st.sampled_from([None, "a@gmail.com", "a@acme.com"]),
    source=st.sampled_from([None, "webinar", "Webinar", "event"]),
    custom=st.dictionaries(st.sampled_from(["plan", "other"]), CUSTOM_VALUE, max_size=2),
    memo_size=st.sampled_from([0, 1_000]),
)
def test_the_rule_steps_are_every_condition_checked_in_turn(
    country: str | None,
    state: str | None,
    employees: int | None,
    industry: str | None,
    email: str | None,
    source: str | None,
    custom: dict[str, Any],
    memo_size: int,
) -> None:
    raw: dict[str, Any] = {"id": "L-1", "country": country, "state": state, "email": email}
    raw.update(employees=employees, industry=industry, source=source, fields=custom)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan_module, "_RUN_MEMO_MAX", memo_size)
        for _ in range(2):  # the second time, the runs' steps may come from their memos
            decision = route(
                parse_lead(raw), policy=RUNS_POLICY, now=NEW_YORK_1659, state=RoutingState()
            )
            steps = [
                (str(s.stage), s.subject, s.ok, s.detail, s.field, s.value)
                for s in decision.trace
                if s.stage in ("qualify", "rule")
            ]
            assert steps == _plain_steps(RUNS_POLICY, dict(decision.facts))


def test_rules_gated_on_a_fact_the_policy_folds_share_a_run() -> None:
    plan = plan_module.plan_for(RUNS_POLICY)
    runs = [len(line.run.lines) if line.run else 0 for line in plan.rules]
    # NA big .. NA plan on region; Quebec, Britain on country; Plan, Plan again on fields.plan;
    # fields.other is folded too (a condition reads it).
    assert runs == [3, 2, 0, 2, 0, 2, 0, 2, 0]


# --- the engine: team members checked once a minute ---------------------------------------

TEAMS_POLICY_TEXT = textwrap.dedent(
    """\
    reps:
      - {id: ann, timezone: America/New_York, hours: "09:00-17:00", capacity: 1}
      - {id: ben, timezone: America/New_York, skills: [french], weight: 3}
      - {id: cat, timezone: Europe/Paris, hours: "09:00-17:00", skills: [french]}
      - {id: dan, timezone: Asia/Tokyo, hours: "09:00-17:00", capacity: 2, weight: 2}
      - {id: eve, timezone: America/Los_Angeles}
    teams:
      rr: {members: [ann, ben, cat, dan, eve]}
      weighted: {members: [ann, ben, cat, dan, eve], distribution: weighted}
      least: {members: [eve, dan, cat, ben, ann], distribution: least_loaded}
    rules:
      - name: French
        when: {fields.lang: fr}
        assign: {team: rr, skill: french}
      - name: Weighted
        when: {fields.team: weighted}
        assign: {team: weighted}
      - name: Weighted French
        when: {fields.team: weighted-fr}
        assign: {team: weighted, skill: french}
      - name: Least
        when: {fields.team: least}
        assign: {team: least}
      - name: Everyone
        assign: {team: rr}
    """
)


@pytest.mark.parametrize(
    "fields",
    [{}, {"lang": "fr"}, {"team": "weighted"}, {"team": "weighted-fr"}, {"team": "least"}],
)
def test_decisions_with_the_team_memos_warm_are_those_of_a_fresh_policy(
    fields: dict[str, str],
) -> None:
    def decide_in_turn(policy_for: Any) -> list[Decision]:
        away = {"eve": OutOfOffice(until=NEW_YORK_1659 + timedelta(hours=1))}
        loads: dict[str, int] = {}
        teams: dict[str, Any] = {}
        decisions = []
        for number in range(12):
            now = NEW_YORK_1659 + timedelta(seconds=20 * number)  # crosses 17:00 in New York
            lead = parse_lead({"id": f"L-{number}", "fields": fields})
            excluded = {"ben": "rejected this lead"} if number % 5 == 4 else None
            state = RoutingState(loads, away if number % 2 else {}, teams, {})
            decision = route(lead, policy=policy_for(), now=now, state=state, excluded=excluded)
            if decision.rep is not None:
                loads[decision.rep] = loads.get(decision.rep, 0) + 1
            if decision.team is not None and decision.team_state is not None:
                teams[decision.team] = decision.team_state
            decisions.append(decision)
        return decisions

    warm = parse_policy(TEAMS_POLICY_TEXT)
    expected = decide_in_turn(lambda: parse_policy(TEAMS_POLICY_TEXT))
    assert decide_in_turn(lambda: warm) == expected
    assert any(step.stage == "rep" and not step.ok for d in expected for step in d.trace)


@given(
    ids=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=5),
    last=st.sampled_from([None, "a", "b", "c", "z"]),
)
def test_members_rotate_as_their_ids_do(ids: list[str], last: str | None) -> None:
    members = [(rep_id, position) for position, rep_id in enumerate(ids)]
    rotated = targets_module._rotated(members, tuple(ids), last)  # type: ignore[arg-type]
    assert [rep_id for rep_id, _ in rotated] == rotation_order(ids, last)


# --- the engine: decisions built positionally -----------------------------------------------


def test_decisions_are_built_in_the_order_of_their_fields() -> None:
    # `targets.decide_assigned` and `decide_queued` pass Decision's fields by position, in this
    # order.
    assert [f.name for f in dataclasses.fields(Decision)] == [
        "lead_id",
        "outcome",
        "reason",
        "rep",
        "team",
        "rule",
        "method",
        "queue",
        "channel",
        "sla_seconds",
        "sla_due_at",
        "account",
        "team_state",
        "fallback_used",
        "trace",
        "facts",
        # Set by `engine.route` after the fact, for a lead in an experiment: never positional.
        "experiment",
        "arm",
    ]


# --- normalisation: regions of country codes ----------------------------------------------


def test_every_country_code_with_a_default_region_is_its_own_normalisation() -> None:
    # `default_region` looks a code up directly before normalising it.
    for code in geo._DEFAULT_REGION_OF:
        assert normalize_country(code) == code
        assert default_region(code) == geo._DEFAULT_REGION_OF[normalize_country(code)]
