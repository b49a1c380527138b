from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing.accounts import AccountIndex
from routing.decision import Decision, RoutingState, Stage, Step
from routing.distribution import TeamState
from routing.engine import route
from routing.explain import explain
from routing.leads import parse_lead
from routing.model import Account, OpenLead, Outcome, OutOfOffice
from routing.policy import Policy, parse_policy
from routing.simulation import Simulation
from tests.routing.examples import example_policy

# Tuesday 17 Nov 2026, 17:15 UTC: New York 12:15, Los Angeles 09:15, London 17:15 (Dan is off).
TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return example_policy()


def lead(**fields: Any) -> Any:
    fields.setdefault("id", "L-1")
    return parse_lead(fields)


def decide(policy: Policy, now: datetime = TUESDAY, **kwargs: Any) -> Decision:
    accounts = kwargs.pop("accounts", None)
    state = kwargs.pop("state", None)
    excluded = kwargs.pop("excluded", None)
    return route(
        lead(**kwargs),
        policy=policy,
        now=now,
        accounts=AccountIndex(accounts) if accounts is not None else None,
        state=state,
        excluded=excluded,
    )


ENTERPRISE_US = {"email": "cto@bigco.com", "country": "United States", "employees": 5000}


# --- normalisation ----------------------------------------------------------------------------


def test_the_registrable_domain_comes_from_the_website_url(policy: Policy) -> None:
    d = decide(policy, email="x@gmail.com", website="https://www.eu.acme.co.uk/x")
    assert d.facts["domain"] == "acme.co.uk"
    assert d.facts["email_domain"] == "gmail.com"


def test_country_names_and_codes_become_iso_codes_with_a_region(policy: Policy) -> None:
    assert decide(policy, country="United Kingdom").facts["country"] == "GB"
    assert decide(policy, country="USA").facts["region"] == "NA"
    assert decide(policy, country="de").facts["region"] == "EMEA"
    # Brazil is not in the policy's own regions map: the built-in default covers it.
    assert decide(policy, country="Brazil").facts["region"] == "LATAM"


def test_segments_use_inclusive_lower_bounds_and_missing_stays_missing(policy: Policy) -> None:
    segment = {n: decide(policy, employees=n).facts["segment"] for n in (0, 199, 200, 999, 1000)}
    assert segment == {0: "SMB", 199: "SMB", 200: "MidMarket", 999: "MidMarket", 1000: "Enterprise"}
    assert decide(policy).facts["segment"] is None


def test_an_unrecognised_country_is_noted_in_the_trace(policy: Policy) -> None:
    d = decide(policy, country="Narnia")
    assert d.facts["country"] is None
    assert any(s.stage is Stage.NORMALISE and "Narnia" in s.detail for s in d.trace)


# --- qualification ------------------------------------------------------------------------------


def test_a_free_mail_lead_goes_to_nurture_with_no_rep(policy: Policy) -> None:
    d = decide(policy, email="someone@gmail.com", employees=5000, country="US")
    assert (d.outcome, d.rep, d.rule) == (Outcome.NURTURE, None, "Free email domain")
    assert d.reason == "Free email domain → nurture"


def test_a_student_is_disqualified_whatever_the_case(policy: Policy) -> None:
    d = decide(policy, email="s@uni.edu", title="PhD STUDENT")
    assert (d.outcome, d.rule) == (Outcome.DISQUALIFIED, "Students")


# --- accounts and the rules -----------------------------------------------------------------------

ACCOUNTS = [
    Account("A1", "Initech", "https://www.initech.com", owner="bob"),
    Account("A2", "Tyrell Corporation", "tyrell.com", owner="alice"),
    Account("A3", "Müller Maschinenbau GmbH", "mueller.de", owner="dan"),
]


def test_a_lead_of_a_known_domain_goes_to_the_account_owner(policy: Policy) -> None:
    d = decide(policy, email="p@sales.initech.com", accounts=ACCOUNTS)
    assert (d.outcome, d.rep, d.rule) == (Outcome.ASSIGNED, "bob", "Existing account owner")
    assert d.account is not None and d.account.method == "domain"
    assert d.reason == "Existing account owner · Bob Brown owns Initech"


def test_a_misspelt_company_name_still_finds_its_account(policy: Policy) -> None:
    d = decide(policy, email="e@tyrellcorp.net", company="Tyrel Corp", accounts=ACCOUNTS)
    assert d.account is not None and d.account.method == "name"
    assert d.account.score >= 90
    assert d.rep == "alice"


def test_a_free_mail_domain_never_matches_an_account(policy: Policy) -> None:
    accounts = [Account("G", "Google", "gmail.com", owner="bob")]
    d = decide(policy, email="x@gmail.com", website="gmail.com", accounts=accounts)
    assert d.account is None


def test_an_unavailable_owner_uses_the_policy_fallback_and_stops_there(policy: Policy) -> None:
    # Dan owns the account but is off hours; the owner rule matched, so later rules are not tried.
    d = decide(policy, email="f@mueller.de", country="DE", employees=50, accounts=ACCOUNTS)
    assert (d.outcome, d.queue, d.channel) == (Outcome.QUEUED, "unmatched", "C01TRIAGE")
    assert d.rule == "Existing account owner" and d.fallback_used
    assert [s.subject for s in d.trace if s.stage is Stage.RULE] == ["Existing account owner"]
    assert (
        d.reason == "Existing account owner · Dan Doyle is outside working hours → unmatched queue"
    )


def test_sticky_accounts_send_later_leads_to_the_rep_holding_the_open_ones(policy: Policy) -> None:
    accounts = [Account("S", "Stark Industries", "stark.com")]
    state = RoutingState(account_reps={"S": ["bob"]})
    d = decide(
        policy, email="t@stark.com", country="US", employees=9000, accounts=accounts, state=state
    )
    assert (d.rep, d.rule, d.method) == ("bob", "Sticky account", "sticky")


def test_a_sticky_rep_who_is_away_does_not_hold_the_account(policy: Policy) -> None:
    accounts = [Account("S", "Stark Industries", "stark.com")]
    state = RoutingState(account_reps={"S": ["bob"]}, out_of_office={"bob": OutOfOffice()})
    d = decide(
        policy, email="t@stark.com", country="US", employees=9000, accounts=accounts, state=state
    )
    assert d.rule == "Enterprise North America" and d.rep == "alice"


# --- the same person under another lead id ------------------------------------------------------

ANNA = {"email": "anna@xn--mnchner-bau-thb.de", "country": "US", "employees": 9000}


def test_a_person_arriving_again_goes_to_the_rep_holding_their_open_lead(policy: Policy) -> None:
    # The open lead was stored with the domain in Unicode; this one spells it in punycode.
    state = RoutingState(person_leads={"anna@münchner-bau.de": [OpenLead("bob", "L-1")]})
    d = decide(policy, id="L-2", state=state, **ANNA)
    assert (d.rep, d.rule, d.method, d.team) == ("bob", "Same person", "same_person", "enterprise")
    assert d.reason == "Same person as open lead L-1 · Bob Brown holds it"
    assert Step(Stage.PERSON, "anna@münchner-bau.de", True, "bob holds their open lead L-1") in (
        d.trace
    )
    assert "same person anna@münchner-bau.de: bob holds their open lead L-1" in explain(d, policy)


def test_the_same_person_comes_before_the_sticky_account(policy: Policy) -> None:
    accounts = [Account("S", "Stark Industries", "stark.com")]
    state = RoutingState(
        account_reps={"S": ["alice"]}, person_leads={"tony@stark.com": [OpenLead("bob", "L-1")]}
    )
    d = decide(policy, id="L-2", email="tony@stark.com", accounts=accounts, state=state)
    assert (d.rep, d.method) == ("bob", "same_person")


def test_the_most_recent_holder_who_can_take_it_gets_the_person(policy: Policy) -> None:
    held = [OpenLead("alice", "L-3"), OpenLead("bob", "L-1")]
    state = RoutingState(person_leads={"tony@stark.com": held}, open_loads={"alice": 25})
    d = decide(policy, id="L-4", email="tony@stark.com", state=state)
    assert (d.rep, d.reason) == ("bob", "Same person as open lead L-1 · Bob Brown holds it")
    assert Step(Stage.REP, "alice", False, "is at capacity (25/25 open leads)") in d.trace


def test_a_holder_who_is_away_does_not_hold_the_person_and_the_trace_says_why(
    policy: Policy,
) -> None:
    state = RoutingState(
        person_leads={"anna@münchner-bau.de": [OpenLead("bob", "L-1")]},
        out_of_office={"bob": OutOfOffice(reason="On leave")},
    )
    d = decide(policy, id="L-2", state=state, **ANNA)
    assert (d.rule, d.method) == ("Enterprise North America", "weighted")
    person = [s for s in d.trace if s.stage is Stage.PERSON]
    assert person == [
        Step(
            Stage.PERSON,
            "anna@münchner-bau.de",
            False,
            "no rep holding their open lead is available",
        )
    ]
    assert Step(Stage.REP, "bob", False, "is out of office", note="On leave") in d.trace
    assert "Bob Brown is out of office" in d.reason


def test_a_holder_who_rejected_this_lead_does_not_get_it_back(policy: Policy) -> None:
    state = RoutingState(person_leads={"anna@münchner-bau.de": [OpenLead("bob", "L-1")]})
    d = decide(policy, id="L-2", state=state, excluded={"bob": "rejected this lead"}, **ANNA)
    assert d.rep == "alice" and d.method == "weighted"
    assert Step(Stage.REP, "bob", False, "rejected this lead") in d.trace


def test_a_holder_no_longer_in_the_policy_is_passed_over_with_a_step(policy: Policy) -> None:
    state = RoutingState(person_leads={"anna@münchner-bau.de": [OpenLead("zed", "L-1")]})
    d = decide(policy, id="L-2", state=state, **ANNA)
    assert d.rule == "Enterprise North America"
    detail = "zed holds their open lead but is not a rep of the policy"
    assert Step(Stage.PERSON, "anna@münchner-bau.de", False, detail) in d.trace


def test_the_leads_own_open_offer_does_not_make_it_the_same_person(policy: Policy) -> None:
    state = RoutingState(person_leads={"anna@münchner-bau.de": [OpenLead("bob", "L-2")]})
    d = decide(policy, id="L-2", state=state, **ANNA)
    assert d.rule == "Enterprise North America"
    assert not [s for s in d.trace if s.stage is Stage.PERSON]


def test_qualification_still_comes_first_for_the_same_person(policy: Policy) -> None:
    state = RoutingState(person_leads={"someone@gmail.com": [OpenLead("bob", "L-1")]})
    d = decide(policy, id="L-2", email="someone@gmail.com", state=state)
    assert d.outcome is Outcome.NURTURE


def test_a_simulation_sends_a_person_twice_in_a_run_to_one_rep(policy: Policy) -> None:
    sim = Simulation(policy, TUESDAY)
    first = sim.route(lead(id="L-1", **ANNA))
    again = sim.route(lead(id="L-2", **{**ANNA, "email": "Anna@Münchner-Bau.de"}))
    other = sim.route(lead(id="L-3", **{**ANNA, "email": "ben@münchner-bau.de"}))
    assert (first.rep, again.rep, again.method) == ("alice", "alice", "same_person")
    assert other.rep == "bob" and other.method == "weighted"
    # One open lead for each rep holding any: the most recent.
    assert sim.person_leads["anna@münchner-bau.de"] == (OpenLead("alice", "L-2"),)


def test_the_first_matching_rule_wins(policy: Policy) -> None:
    # Mid-market demo requests would match too, but Healthcare specialist comes first.
    d = decide(
        policy, email="a@clinic.com", industry="healthcare", source="demo_request", employees=300
    )
    assert d.rule == "Healthcare specialist" and d.rep == "carol"
    tried = [s.subject for s in d.trace if s.stage is Stage.RULE]
    assert tried == [
        "Existing account owner",
        "EMEA",
        "Enterprise North America",
        "Healthcare specialist",
    ]


def test_a_rule_whose_skilled_reps_are_away_uses_its_own_fallback(policy: Policy) -> None:
    state = RoutingState(out_of_office={"carol": OutOfOffice()})
    d = decide(policy, email="a@clinic.com", industry="Biotech", employees=300, state=state)
    assert (d.rep, d.team, d.rule, d.fallback_used) == ("bob", "smb", "Healthcare specialist", True)
    assert d.reason == (
        "Healthcare specialist · nobody in team smb with skill healthcare available "
        "(Carol Chen is out of office) → fallback team smb · round robin"
    )


def test_nothing_matching_goes_to_the_unmatched_queue_never_dropped(policy: Policy) -> None:
    d = decide(policy, email="a@bigco.jp", country="Japan", employees=5000)
    assert (d.outcome, d.queue, d.rule) == (Outcome.QUEUED, "unmatched", None)
    assert d.reason == "No rule matched → unmatched queue"


def test_every_rule_tried_records_why_it_did_not_match(policy: Policy) -> None:
    d = decide(policy, email="a@bigco.jp", country="Japan", employees=5000)
    misses = {s.subject: (s.detail, s.field, s.value) for s in d.trace if s.stage is Stage.RULE}
    assert misses["EMEA"] == ("region is 'EMEA'", "region", "APAC")
    assert misses["Enterprise North America"] == ("region is 'NA'", "region", "APAC")
    assert misses["Mid-market demo requests"] == ("source is 'demo_request'", "source", None)


# --- eligibility and distribution ---------------------------------------------------------------


def test_the_example_reason_names_the_rule_the_method_and_who_was_skipped(policy: Policy) -> None:
    early = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles: Alice is not in yet
    d = decide(policy, now=early, **ENTERPRISE_US)
    assert d.rep == "bob"
    assert d.reason == (
        "Enterprise North America · weighted round robin · Alice Adams is outside working hours"
    )
    skip = next(s for s in d.trace if s.stage is Stage.REP and not s.ok)
    assert skip.note == "07:00 in America/Los_Angeles, works 09:00-17:30"


def test_weighted_distribution_gives_alice_twice_bobs_share(policy: Policy) -> None:
    sim = Simulation(policy, TUESDAY)
    people = [{**ENTERPRISE_US, "email": f"cto{i}@bigco.com"} for i in range(9)]
    reps = [sim.route(lead(id=f"L{i}", **person)).rep for i, person in enumerate(people)]
    assert reps.count("alice") == 6 and reps.count("bob") == 3
    assert reps[:3] == ["alice", "bob", "alice"]  # interleaved, not in blocks


def test_round_robin_is_strict_rotation_starting_after_the_last_rep(policy: Policy) -> None:
    sim = Simulation(policy, TUESDAY, teams={"smb": TeamState(last_rep="carol")})
    reps = [sim.route(lead(id=f"L{i}", email=f"x{i}@shop.com", employees=10)).rep for i in range(4)]
    assert reps == ["bob", "carol", "bob", "carol"]


def test_least_loaded_prefers_the_emptier_rep_and_breaks_ties_by_rotation(policy: Policy) -> None:
    berlin_morning = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # Dan and Erin both working
    state = RoutingState(open_loads={"dan": 3, "erin": 1})
    d = decide(policy, now=berlin_morning, email="a@firma.de", country="DE", state=state)
    assert d.rep == "erin"
    tied = RoutingState(open_loads={"dan": 2, "erin": 2}, teams={"emea": TeamState(last_rep="dan")})
    assert (
        decide(policy, now=berlin_morning, email="a@firma.de", country="DE", state=tied).rep
        == "erin"
    )


def test_an_out_of_office_rep_is_skipped_until_they_are_back(policy: Policy) -> None:
    back = TUESDAY + timedelta(hours=1)
    state = RoutingState(out_of_office={"alice": OutOfOffice(until=back, reason="dentist")})
    away = decide(policy, state=state, **ENTERPRISE_US)
    assert away.rep == "bob"
    skip = next(s for s in away.trace if s.stage is Stage.REP and s.subject == "alice")
    assert skip.detail == "is out of office until Tue 17 Nov 10:15 PST" and skip.note == "dentist"
    assert decide(policy, now=back, state=state, **ENTERPRISE_US).rep == "alice"


def test_a_rep_at_capacity_is_skipped(policy: Policy) -> None:
    state = RoutingState(open_loads={"alice": 25})
    d = decide(policy, state=state, **ENTERPRISE_US)
    assert d.rep == "bob"
    assert "Alice Adams is at capacity (25/25 open leads)" in d.reason


def test_a_rep_on_a_public_holiday_is_skipped() -> None:
    policy = parse_policy(
        textwrap.dedent(
            """\
            reps:
              - {id: dan, timezone: Europe/London, hours: "09:00-17:00", holidays: GB}
              - {id: erin, timezone: Europe/London}
            teams:
              uk: {members: [dan, erin]}
            rules:
              - {name: UK, assign: {team: uk}}
            """
        )
    )
    christmas = datetime(2026, 12, 25, 11, 0, tzinfo=UTC)
    d = route(lead(), policy=policy, now=christmas)
    assert d.rep == "erin"
    assert "dan is on a public holiday" in d.reason
    assert "– dan is on a public holiday (Christmas Day)\n" in explain(d, policy)


def test_a_rep_on_a_day_off_is_named_in_a_sentence_about_them() -> None:
    policy = parse_policy(
        textwrap.dedent(
            """\
            reps:
              - {id: alice, name: Alice Adams, hours: "09:00-17:00"}
              - {id: bob, name: Bob Brown, hours: "09:00-17:00", days: [mon, sat]}
              - {id: erin, name: Erin Evans}
            teams:
              all: {members: [alice, bob, erin]}
            rules:
              - {name: Everyone, assign: {team: all}}
            """
        )
    )
    sunday = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    d = route(lead(), policy=policy, now=sunday)
    assert d.rep == "erin"
    assert "Alice Adams does not work on Sundays; Bob Brown does not work on Sundays" in d.reason
    assert "is not a working day" not in d.reason
    # `why` says it once, with nothing to add in brackets for a day off.
    assert "– Alice Adams does not work on Sundays\n" in explain(d, policy)


def test_reps_who_rejected_the_lead_are_not_offered_it_again(policy: Policy) -> None:
    d = decide(policy, excluded={"alice": "rejected this lead"}, **ENTERPRISE_US)
    assert d.rep == "bob"
    assert "Alice Adams rejected this lead" in d.reason


def test_a_named_rep_who_is_away_falls_to_the_policy_fallback(policy: Policy) -> None:
    state = RoutingState(out_of_office={"alice": OutOfOffice()})
    d = decide(policy, email="a@mid.com", source="demo_request", employees=500, state=state)
    assert (d.outcome, d.rule, d.queue) == (Outcome.QUEUED, "Mid-market demo requests", "unmatched")


# --- SLA ---------------------------------------------------------------------------------------


def test_sla_comes_from_the_rule_then_the_source_then_the_default(policy: Policy) -> None:
    assert decide(policy, source="content_download", **ENTERPRISE_US).sla_seconds == 300  # rule
    smb = {"email": "a@shop.com", "employees": 10}
    assert decide(policy, source="content_download", **smb).sla_seconds == 3600  # by source
    assert decide(policy, source="Content_Download", **smb).sla_seconds == 3600  # any case
    assert decide(policy, source="website", **smb).sla_seconds == 900  # default


def test_only_assigned_leads_carry_an_sla(policy: Policy) -> None:
    assert decide(policy, email="a@gmail.com").sla_seconds is None
    assert decide(policy, email="a@bigco.jp", country="JP", employees=5000).sla_seconds is None


# --- conditions ---------------------------------------------------------------------------------

CONDITIONS = """\
reps: [{id: r}]
teams: {t: {members: [r]}}
rules:
  - name: Hit
    when: WHEN
    assign: {rep: r}
"""


@pytest.mark.parametrize(
    ("when", "fields", "matches"),
    [
        ("{industry: SOFTWARE}", {"industry": "software"}, True),
        ("{industry: [Retail, Software]}", {"industry": "Software"}, True),
        ("{industry: [Retail, Software]}", {"industry": "Banking"}, False),
        ("{employees: {gte: 200, lt: 1000}}", {"employees": 200}, True),
        ("{employees: {gte: 200, lt: 1000}}", {"employees": 1000}, False),
        ("{employees: {gt: 5}}", {}, False),
        ("{score: {lte: 50.5}}", {"score": "50.5"}, True),
        ("{country: {in: [US, CA]}}", {"country": "Canada"}, True),
        ("{country: {not_in: [US, CA]}}", {"country": "Canada"}, False),
        ("{country: {not_in: [US, CA]}}", {}, True),
        ("{title: {contains: chief}}", {"title": "Chief Revenue Officer"}, True),
        ("{title: {matches: '^(vp|head) of'}}", {"title": "VP of Sales"}, True),
        ("{title: {matches: '^(vp|head) of'}}", {"title": "SVP of Sales"}, False),
        ("{phone: {exists: true}}", {"phone": "+1 555"}, True),
        ("{phone: {exists: false}}", {}, True),
        ("{source: {ne: partner}}", {"source": "Partner"}, False),
        ("{source: {ne: partner}}", {}, True),
        ("{fields.plan: enterprise}", {"fields": {"plan": "Enterprise"}}, True),
        ("{fields.arr: {gte: 50000}}", {"fields.arr": "75000"}, True),
        ("{any: [{region: EMEA}, {segment: SMB}]}", {"employees": 5}, True),
        ("{not: {region: NA}}", {"country": "US"}, False),
        ("{all: [{region: NA}, {not: {segment: SMB}}]}", {"country": "US", "employees": 500}, True),
        ("{region: NA, segment: Enterprise}", {"country": "US", "employees": 500}, False),
        ("{email_domain_type: business, email_disposable: false}", {"email": "a@b.com"}, True),
        ("{account.matched: false}", {}, True),
    ],
)
def test_condition_operators(when: str, fields: dict[str, Any], matches: bool) -> None:
    policy = parse_policy(CONDITIONS.replace("WHEN", when))
    d = route(lead(**fields), policy=policy, now=TUESDAY)
    assert (d.rule == "Hit") is matches


# --- explanation --------------------------------------------------------------------------------


def test_the_explanation_lists_rules_reps_and_the_outcome(policy: Policy) -> None:
    early = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)
    d = decide(policy, now=early, first_name="Ana", company="BigCo", **ENTERPRISE_US)
    text = explain(d, policy)
    assert "Lead L-1: Ana, BigCo" in text
    assert "✗ EMEA: needs region is 'EMEA'; region is NA" in text
    assert "✓ Enterprise North America: region is 'NA' and segment is 'Enterprise'" in text
    assert "– Alice Adams is outside working hours (07:00 in America/Los_Angeles, works" in text
    assert "✓ Bob Brown: chosen (weighted round robin in team enterprise)" in text
    assert "Outcome: assigned to Bob Brown (team enterprise), to be claimed within 5m" in text


def test_route_needs_an_aware_now(policy: Policy) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        route(lead(), policy=policy, now=datetime(2026, 11, 17, 12, 0))


def test_a_step_as_data_holds_each_of_its_fields_and_reads_back_the_same() -> None:
    step = Step(Stage.RULE, "Big EMEA", False, "region is 'EMEA'", "region", "NA", "a note")
    assert step.as_dict() == {
        "stage": Stage.RULE,
        "subject": "Big EMEA",
        "ok": False,
        "detail": "region is 'EMEA'",
        "field": "region",
        "value": "NA",
        "note": "a note",
    }
    assert Step(**step.as_dict()) == step
