from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from routing.distribution import Distribution
from routing.engine import route
from routing.model import Lead
from routing.policy import PolicyError, TargetKind, parse_policy
from tests.routing.examples import example_policy


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(textwrap.dedent(text), source="routing.yml")
    return [p.format("routing.yml") for p in caught.value.problems]


MINIMAL = """\
reps:
  - id: alice
teams:
  core:
    members: [alice]
rules:
  - name: Everyone
    assign: {team: core}
"""


def test_the_reference_policy_loads_unchanged() -> None:
    policy = example_policy()
    assert list(policy.reps) == ["alice", "bob", "carol", "dan", "erin"]
    assert policy.teams["enterprise"].distribution is Distribution.WEIGHTED
    assert policy.teams["emea"].distribution is Distribution.LEAST_LOADED
    assert [r.name for r in policy.rules][:2] == ["Existing account owner", "EMEA"]
    assert policy.rules[0].assign.kind is TargetKind.ACCOUNT_OWNER
    assert policy.rules[3].fallback is not None and policy.rules[3].fallback.name == "smb"
    assert policy.sla.default == 15 * 60
    assert policy.sla.by_source == {"demo_request": 300, "content_download": 3600}
    assert policy.rules[2].sla_seconds == 300
    assert policy.fallback.name == "unmatched" and policy.fallback.channel == "C01TRIAGE"
    assert policy.reps["bob"].tz.key == "America/New_York"  # the policy's default zone
    assert policy.reps["alice"].weight == 2 and policy.reps["alice"].capacity == 25
    assert policy.region_overrides["GB"] == "EMEA"
    assert policy.warnings == ()


def test_a_minimal_policy_gets_defaults() -> None:
    policy = parse_policy(MINIMAL)
    assert policy.sla.default == 900
    assert policy.fuzzy_threshold == 90
    assert policy.segments == ((1000, "Enterprise"), (200, "MidMarket"), (0, "SMB"))
    assert policy.fallback.name == "unmatched"
    assert policy.teams["core"].distribution is Distribution.ROUND_ROBIN


def test_unknown_keys_are_reported_with_line_column_and_a_suggestion() -> None:
    problems = problems_of(
        """\
        reps:
          - id: alice
            capacty: 5
        """
    )
    assert problems == [
        "routing.yml:3:5: reps[0].capacty: unknown key `capacty` (did you mean `capacity`?); "
        "expected one of id, name, slack, email, timezone, hours, days, capacity, weight, skills, "
        "holidays, salesforce_user_id, hubspot_owner_id"
    ]


def test_every_error_is_reported_at_once_in_file_order() -> None:
    problems = problems_of(
        """\
        timezone: Mars/Olympus
        reps:
          - id: alice
            timezone: America/New_Yrok
            hours: "25:00-17:00"
            holidays: XX
          - id: alice
        managers:
          - id: maria
            digest: "every monday"
        teams:
          sales:
            members: [alice, zed]
            manager: mario
            distribution: random
          empty:
            members: []
        sla:
          default: 15 minutes
        rules:
          - name: Catch all
            assign: {team: sales}
          - name: Never reached
            when: {region: {eq: NA}}
            assign: {team: nowhere}
        """
    )
    text = "\n".join(problems)
    expected_fragments = [
        "routing.yml:1:1: timezone: unknown time zone 'Mars/Olympus'",
        "routing.yml:4:5: reps[0].timezone: unknown time zone 'America/New_Yrok' "
        "(did you mean America/New_York?)",
        "routing.yml:5:5: reps[0].hours: '25:00-17:00'",
        "routing.yml:6:5: reps[0].holidays:",
        "routing.yml:7:5: reps[1].id: duplicate id `alice` (first at reps[0])",
        "routing.yml:10:5: managers[0].digest: 'every monday' is not a cron expression",
        "routing.yml:13:22: teams.sales.members[1]: `zed` is not a rep defined under reps",
        "routing.yml:14:5: teams.sales.manager: `mario` is not a manager defined under managers "
        "(did you mean `maria`?)",
        "routing.yml:15:5: teams.sales.distribution: must be 'round_robin', 'weighted', "
        "'least_loaded' or 'performance'; got 'random'",
        "routing.yml:17:5: teams.empty.members: a team needs at least one member",
        "routing.yml:19:3: sla.default: '15 minutes' is not a duration",
        "routing.yml:23:5: warning: rules[1]: comes after the catch-all rule `Catch all` "
        "and can never match",
        "routing.yml:24:21: rules[1].when.region.eq: unknown operator `eq`",
        "routing.yml:25:14: rules[1].assign.team: `nowhere` is not a team defined under teams",
    ]
    for fragment in expected_fragments:
        assert fragment in text, f"missing {fragment!r} in:\n{text}"
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


def test_broken_yaml_is_one_clear_error_with_its_line() -> None:
    problems = problems_of(
        """\
        reps:
          - id: alice
            name: "Alice
        teams: {}
        """
    )
    assert len(problems) == 1
    assert problems[0].startswith("routing.yml:")
    assert "not valid YAML" in problems[0]


def test_a_duplicate_yaml_key_is_reported_not_silently_overwritten() -> None:
    problems = problems_of(
        """\
        reps:
          - id: alice
        reps:
          - id: bob
        """
    )
    assert len(problems) == 1 and "not valid YAML" in problems[0] and "duplicate" in problems[0]


def test_a_duplicate_key_is_one_sentence_naming_it_and_its_first_line_not_both_values() -> None:
    problems = problems_of(
        """\
        reps:
          - id: alice
            name: Alice Adams
            skills: [healthcare, biotech, pharma]
        teams:
          core: {members: [alice]}
        reps:
          - id: bob
        """
    )
    assert problems == [
        "routing.yml:7:1: not valid YAML: duplicate key `reps`, written twice in the same "
        "mapping (first at line 1); write it once, merging the two"
    ]


def test_a_tab_in_the_indentation_says_yaml_indents_with_spaces() -> None:
    problems = problems_of("reps:\n\t- id: alice\n")
    assert len(problems) == 1
    assert problems[0].startswith("routing.yml:2:1: ")
    assert "a tab: YAML indents with spaces only" in problems[0]


def test_a_line_indented_out_of_step_says_to_check_its_indentation() -> None:
    problems = problems_of(
        """\
        reps:
          - id: bob
           name: Bob
        """
    )
    assert len(problems) == 1
    assert problems[0].startswith("routing.yml:3:")
    assert "check the indentation of this line against the lines above it" in problems[0]


@pytest.mark.parametrize(
    ("written", "opener", "closer"),
    [("members: [alice]", "[", "]"), ("assign: {team: core}", "{", "}")],
)
def test_an_inline_list_or_mapping_left_open_names_the_line_it_opened_on(
    written: str, opener: str, closer: str
) -> None:
    line = next(n for n, text in enumerate(MINIMAL.splitlines(), 1) if written in text)
    problems = problems_of(MINIMAL.replace(written, written.removesuffix(closer)))
    assert len(problems) == 1
    assert f"the `{opener}` at line {line} is not closed: end it with `{closer}`" in problems[0]


def test_an_inline_list_left_open_at_the_end_of_the_file_names_the_line_it_opened_on() -> None:
    problems = problems_of(MINIMAL + "timezone: [\n")

    assert len(problems) == 1
    assert "the `[` at line 9 is not closed: end it with `]`" in problems[0]


def test_a_dash_item_inside_an_inline_list_says_to_use_commas_or_drop_the_brackets() -> None:
    problems = problems_of(MINIMAL.replace("members: [alice]", "members: [\n      - alice\n    ]"))

    assert len(problems) == 1
    assert problems[0].startswith("routing.yml:6:7: not valid YAML: a `- ` item inside the `[`")
    assert "at line 5" in problems[0] and "[alice, bob]" in problems[0]


def test_a_quote_left_open_names_the_line_it_opened_on() -> None:
    problems = problems_of(MINIMAL.replace("- id: alice", '- id: "alice'))
    assert len(problems) == 1
    assert "the quote at line 2 is not closed" in problems[0]


def test_a_key_with_nothing_after_its_colon_is_said_to_have_no_value() -> None:
    problems = problems_of(MINIMAL + "fallback:\n  queue:\n")
    assert problems == ["routing.yml:10:3: fallback.queue: has no value: write one after the colon"]


RULES_ONLY = "reps:\n  - id: alice\nteams:\n  core: {members: [alice]}\nrules:\n"


def test_a_mistake_in_a_rules_target_is_one_sentence_about_the_form_it_is_written_in() -> None:
    problems = problems_of(
        RULES_ONLY
        + "  - {name: A, when: {region: NA}, assign: {team: core, skil: x}}\n"
        + "  - {name: B, when: {region: NA}, assign: {rep: alice, skill: x}}\n"
        + "  - {name: C, when: {region: NA}, assign: {team: core}, "
        + "fallback: {team: core, queue: q}}\n"
        + "  - {name: D, when: {region: NA}, assign: {skill: x}}\n"
    )
    assert problems == [
        "routing.yml:6:56: rules[0].assign.skil: unknown key `skil` (did you mean `skill`?); "
        "expected one of team, skill",
        "routing.yml:7:56: rules[1].assign.skill: unknown key `skill`; expected one of rep",
        "routing.yml:8:57: rules[2].fallback: names `team` and `queue`: a target is one of "
        "`{rep: ID}`, `{team: NAME}`, `{team: NAME, skill: SKILL}` or `{queue: NAME}`",
        "routing.yml:9:35: rules[3].assign: needs `rep`, `team` or `queue` (it has `skill`): "
        "write it as `{rep: ID}`, `{team: NAME}`, `{team: NAME, skill: SKILL}` or `{queue: NAME}`",
    ]


def test_account_owner_as_a_rules_fallback_says_why_it_cannot_be_one() -> None:
    problems = problems_of(
        RULES_ONLY + "  - {name: Owner, assign: account_owner, fallback: account_owner}\n"
    )
    assert len(problems) == 1
    assert problems[0].startswith(
        "routing.yml:6:42: rules[0].fallback: `account_owner` is not a fallback"
    )


def test_a_target_with_nothing_after_its_colon_is_said_once_to_have_no_value() -> None:
    problems = problems_of(RULES_ONLY + "  - name: Owner\n    assign:\n")
    assert problems == ["routing.yml:7:5: rules[0].assign: has no value: write one after the colon"]


def test_a_misspelt_target_word_names_the_words_there_are() -> None:
    problems = problems_of(RULES_ONLY + "  - {name: Owner, assign: accountowner}\n")
    assert problems == [
        "routing.yml:6:19: rules[0].assign: must be 'account_owner' or 'queue'; got 'accountowner'"
    ]


def test_a_duration_without_a_unit_is_a_warning_that_it_is_read_as_seconds() -> None:
    policy = parse_policy(
        MINIMAL.replace("- id: alice", "- {id: alice, slack: U0ALICE}").replace(
            "    assign: {team: core}", "    assign: {team: core}\n    sla: 30m"
        )
        + "sla: {default: 15, by_source: {webinar: 2h}}\n",
        source="routing.yml",
    )
    assert policy.sla.default == 15
    assert [w.format("routing.yml") for w in policy.warnings] == [
        "routing.yml:10:7: warning: sla.default: `15` has no unit, so it is read as 15 seconds; "
        "write the unit you mean, such as 15s or 15m"
    ]


def test_a_name_match_threshold_written_as_a_fraction_is_a_warning() -> None:
    policy = parse_policy(
        MINIMAL.replace("- id: alice", "- {id: alice, slack: U0ALICE}")
        + "accounts: {fuzzy_threshold: 0.9}\n",
        source="routing.yml",
    )
    assert [w.format("routing.yml") for w in policy.warnings] == [
        "routing.yml:9:12: warning: accounts.fuzzy_threshold: 0.9 is on a scale of 0 to 100, "
        "so nearly any company name would match an account; did you mean 90?"
    ]


def test_one_item_where_a_list_is_wanted_says_how_to_write_the_list() -> None:
    problems = problems_of(
        MINIMAL.replace("- id: alice", "- {id: alice, skills: healthcare}").replace(
            "members: [alice]", "members: alice"
        )
    )
    assert problems == [
        "routing.yml:2:17: reps[0].skills: must be a list, even of one: [healthcare]; "
        "got 'healthcare'",
        "routing.yml:5:5: teams.core.members: must be a list, even of one: [alice]; got 'alice'",
    ]


def test_a_policy_without_rules_loads_with_a_warning_that_every_lead_waits_in_the_queue() -> None:
    policy = parse_policy(
        "reps:\n  - {id: alice, slack: U0ALICE}\nfallback: {queue: triage}\n",
        source="routing.yml",
    )
    assert [w.format("routing.yml") for w in policy.warnings] == [
        "routing.yml:1:1: warning: rules: there are no rules, so every lead that qualifies waits "
        "in the fallback queue `triage`: write the rules that give leads to reps and teams"
    ]


def test_a_problem_under_a_name_with_a_capital_keeps_the_name_and_its_line() -> None:
    problems = problems_of(
        """\
        reps:
          - {id: alice, slack: U0ALICE}
        regions: {EMEA: GB}
        teams:
          Enterprise: {members: [alice], distribution: rr}
        sla: {by_source: {Webinar: 5x, strategic: 5y}}
        rules:
          - {name: All, assign: {team: Enterprise}}
        """
    )
    assert [p.split(": ")[0] for p in problems] == [
        "routing.yml:3:11",
        "routing.yml:5:34",
        "routing.yml:6:19",
        "routing.yml:6:32",
    ]
    assert [p.split(": ")[1] for p in problems] == [
        "regions.EMEA",
        "teams.Enterprise.distribution",
        "sla.by_source.Webinar",
        "sla.by_source.strategic",
    ]


def test_a_country_in_a_condition_may_be_a_name_as_a_leads_country_may() -> None:
    policy = parse_policy(
        """\
        reps:
          - {id: alice, slack: U0ALICE}
        rules:
          - {name: Home, when: {country: [United States, Deutschland, UK]}, assign: {rep: alice}}
          - {name: Away, when: {country: {ne: Narnia}}, assign: queue}
        """.replace("        ", ""),
        source="routing.yml",
    )
    now = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
    for country in ("USA", "Germany", "GB"):
        assert route(Lead(id="L", country=country), policy=policy, now=now).rule == "Home"
    assert route(Lead(id="L", country="France"), policy=policy, now=now).rule == "Away"
    assert [w.format("routing.yml") for w in policy.warnings] == [
        "routing.yml:5:35: warning: rules[1].when.country.ne: `Narnia` is not a country "
        "leadrouter recognises (write a name or ISO code, such as Germany or DE): no lead's "
        "country is ever that"
    ]


def test_a_us_state_or_canadian_province_in_a_condition_matches_by_name_or_code() -> None:
    policy = parse_policy(
        """\
        reps:
          - {id: alice, slack: U0ALICE}
        rules:
          - {name: West, when: {state: [California, OR, washington]}, assign: {rep: alice}}
          - {name: Quebec, when: {state: {ne: Québec}}, assign: queue}
          - {name: Other, when: {}, assign: {rep: alice}}
        """.replace("        ", ""),
        source="routing.yml",
    )
    now = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
    for state in ("CA", "california", "Oregon", " WA ", "Washington"):
        assert route(Lead(id="L", state=state), policy=policy, now=now).rule == "West", state
    assert route(Lead(id="L", state="Washington DC"), policy=policy, now=now).rule == "Quebec"
    assert route(Lead(id="L", state="QC"), policy=policy, now=now).rule == "Other"
    # Elsewhere a state is compared as written (casefolded), and a lead's state is read as a US
    # state or Canadian province only when its country is the US, Canada or not given.
    assert route(Lead(id="L", state="Bayern"), policy=policy, now=now).rule == "Quebec"
    assert route(Lead(id="L", country="US", state="Oregon"), policy=policy, now=now).rule == "West"
    german = Lead(id="L", country="DE", state="Oregon")
    assert route(german, policy=policy, now=now).rule == "Quebec"


def test_contains_and_matches_on_a_state_still_hold_for_a_us_state_named_in_full() -> None:
    """A lead's US state is read as its postal code: a rule written for the names it used to
    see (`contains: Carolina`) holds for them still, and for their codes."""
    policy = parse_policy(
        """\
        reps:
          - {id: alice, slack: U0ALICE}
          - {id: bob, slack: U0BOB}
        rules:
          - {name: Carolinas, when: {state: {contains: Carolina}}, assign: {rep: alice}}
          - {name: New, when: {state: {matches: "^new "}}, assign: {rep: bob}}
          - {name: Other, when: {}, assign: queue}
        """.replace("        ", ""),
        source="routing.yml",
    )
    now = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
    for state in ("North Carolina", "south carolina", "NC", "Carolina del Norte"):
        assert route(Lead(id="L", state=state), policy=policy, now=now).rule == "Carolinas", state
    for state in ("New York", "NJ", "New Brunswick"):
        assert route(Lead(id="L", state=state), policy=policy, now=now).rule == "New", state
    for state in ("Texas", "CA", "Newfoundland"):  # Newfoundland is NL: not "new "
        assert route(Lead(id="L", state=state), policy=policy, now=now).rule == "Other", state


def test_contains_on_a_state_reads_a_region_code_of_another_country_as_written() -> None:
    """`contains: Carolina` holds for NC and SC because a US lead's state is its postal code;
    a Brazilian lead's SC (Santa Catarina) or a Mexican lead's NC is no Carolina, as a lead's
    state is read as a US state or Canadian province only in the US, Canada or no country."""
    policy = parse_policy(
        """\
        reps:
          - {id: alice, slack: U0ALICE}
        rules:
          - {name: Carolinas, when: {state: {contains: Carolina}}, assign: {rep: alice}}
          - {name: West, when: {state: {matches: "^british"}}, assign: {rep: alice}}
          - {name: Other, when: {}, assign: queue}
        """.replace("        ", ""),
        source="routing.yml",
    )
    now = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
    for state, country in (("SC", "BR"), ("NC", "Mexico"), ("BC", "MX")):
        lead = Lead(id="L", state=state, country=country)
        assert route(lead, policy=policy, now=now).rule == "Other", (state, country)
    for state, country in (("SC", "US"), ("NC", None), ("South Carolina", "USA")):
        lead = Lead(id="L", state=state, country=country)
        assert route(lead, policy=policy, now=now).rule == "Carolinas", (state, country)
    for state, country in (("BC", "CA"), ("BC", None), ("British Columbia", "Canada")):
        lead = Lead(id="L", state=state, country=country)
        assert route(lead, policy=policy, now=now).rule == "West", (state, country)


def test_conditions_are_checked_field_operator_and_value() -> None:
    problems = problems_of(
        MINIMAL
        + """\
  - name: Bad conditions
    when:
      all:
        - {regoin: NA}
        - {employees: {gte: many}}
        - {title: {matches: "(unclosed"}}
        - {industry: []}
        - {source: {exists: maybe}}
    assign: {team: core}
"""
    )
    text = "\n".join(problems)
    assert "rules[1].when.all[0].regoin: unknown field `regoin` (did you mean `region`?)" in text
    assert "rules[1].when.all[1].employees.gte: `gte` compares numbers; got 'many'" in text
    assert (
        "rules[1].when.all[2].title.matches: `(unclosed` is not a valid regular expression" in text
    )
    assert "rules[1].when.all[3].industry: an empty list matches nothing" in text
    assert "rules[1].when.all[4].source.exists: `exists` takes true or false" in text


def test_qualification_cannot_look_at_the_account_which_is_matched_later() -> None:
    problems = problems_of(
        MINIMAL
        + """\
qualify:
  - name: Customers
    when: {account.matched: true}
    outcome: nurture
"""
    )
    assert any("accounts are matched after qualifying" in p for p in problems)


def test_a_country_in_two_regions_is_an_error() -> None:
    problems = problems_of(MINIMAL + "regions:\n  NA: [US, CA]\n  NORTH: [Canada]\n")
    assert any("regions.NORTH[0]: CA is already in region NA" in p for p in problems)


def test_a_skill_nobody_in_the_team_has_is_a_warning_not_an_error() -> None:
    policy = parse_policy(
        MINIMAL
        + """\
  - name: Specialists
    when: {industry: Healthcare}
    assign: {team: core, skill: healthcare}
"""
    )
    assert len(policy.warnings) >= 1
    assert any(
        "no member of team core has skill `healthcare`" in w.message for w in policy.warnings
    )


def test_missing_required_keys_are_named() -> None:
    problems = problems_of("rules:\n  - when: {region: NA}\n")
    text = "\n".join(problems)
    assert "rules[0].name: `name` is required" in text
    assert "rules[0].assign: `assign` is required" in text


def test_durations_accept_every_written_form() -> None:
    policy = parse_policy(MINIMAL + "sla:\n  default: 1h30m\n  by_source: {chat: 30s, event: 2d}\n")
    assert policy.sla.default == 5400
    assert policy.sla.by_source == {"chat": 30, "event": 172800}


def test_a_policy_that_is_not_a_mapping_is_rejected() -> None:
    assert problems_of("- just\n- a list\n") == [
        "routing.yml: the policy must be a YAML mapping of keys"
    ]


def test_custom_regions_override_the_default_only_for_the_countries_they_list() -> None:
    policy = parse_policy(MINIMAL + "regions:\n  DACH: [Germany, AT, ch]\n")
    assert policy.region_overrides == {"DE": "DACH", "AT": "DACH", "CH": "DACH"}


def test_a_rule_target_may_be_a_named_queue_with_its_own_channel() -> None:
    policy = parse_policy(
        MINIMAL
        + """\
  - name: Partners
    when: {source: partner}
    assign: {queue: partners, channel: C0PARTNER}
  - name: Triage
    when: {source: unknown}
    assign: queue
"""
    )
    partners, triage = policy.rules[1], policy.rules[2]
    assert (partners.assign.kind, partners.assign.name, partners.assign.channel) == (
        TargetKind.QUEUE,
        "partners",
        "C0PARTNER",
    )
    assert (triage.assign.kind, triage.assign.name) == (TargetKind.QUEUE, "unmatched")


# --- card.fields ---------------------------------------------------------------------------------


def test_the_card_shows_a_sensible_set_of_fields_unless_the_policy_chooses() -> None:
    assert parse_policy(MINIMAL).card_fields == (
        "title",
        "industry",
        "employees",
        "country",
        "state",
        "source",
    )
    chosen = parse_policy(MINIMAL + "card:\n  fields: [segment, fields.plan, account.tier]\n")
    assert chosen.card_fields == ("segment", "fields.plan", "account.tier")
    assert parse_policy(MINIMAL + "card:\n  fields: []\n").card_fields == ()


def test_a_card_field_that_no_lead_has_is_an_error_with_its_line_and_a_suggestion() -> None:
    problems = problems_of(MINIMAL + "card:\n  fields: [title, industy, plan]\n")
    assert problems == [
        "routing.yml:10:19: card.fields[1]: `industy` is not a lead field (did you mean "
        "`industry`?); custom fields are written fields.NAME",
        "routing.yml:10:28: card.fields[2]: `plan` is not a lead field; custom fields are "
        "written fields.NAME",
    ]


def test_a_card_field_listed_twice_or_more_than_ten_is_an_error() -> None:
    twice = problems_of(MINIMAL + "card:\n  fields: [title, source, title]\n")
    assert any("card.fields[2]: `title` is listed twice" in p for p in twice)
    many = ", ".join(f"fields.f{n}" for n in range(11))
    too_many = problems_of(MINIMAL + f"card:\n  fields: [{many}]\n")
    assert any(
        "card.fields: a card has room for 10 fields (Slack's limit); 11 are" in p for p in too_many
    )


def test_contact_details_in_card_fields_are_a_warning_they_are_always_on_the_card() -> None:
    policy = parse_policy(MINIMAL + "card:\n  fields: [email, title, phone]\n")
    assert policy.card_fields == ("title",)
    messages = [w.message for w in policy.warnings]
    assert (
        "`email` is always on the card (the contact details); listed here it is left out"
        in messages
    )
    assert any(m.startswith("`phone` is always on the card") for m in messages)


def warnings_of(text: str) -> list[str]:
    """The warnings about conditions (MINIMAL's rep has no Slack id, which is warned of too)."""
    policy = parse_policy(textwrap.dedent(text), source="routing.yml")
    return [w.format("routing.yml") for w in policy.warnings if "when" in w.path]


def test_a_segment_no_lead_can_have_is_a_warning_naming_the_segments_there_are() -> None:
    warnings = warnings_of(MINIMAL.replace("    assign:", "    when: {segment: SMBB}\n    assign:"))
    assert warnings == [
        "routing.yml:8:12: warning: rules[0].when.segment: `SMBB` is not a value segment can "
        "have (SMB, MidMarket, Enterprise; did you mean `SMB`?): this test never holds"
    ]


def test_a_region_in_a_list_is_checked_against_the_policys_own_regions_and_the_default_ones() -> (
    None
):
    text = "regions:\n  DACH: [DE, AT, CH]\n" + MINIMAL.replace(
        "    assign:", "    when: {region: [DACH, EMAE, latam]}\n    assign:"
    )
    warnings = warnings_of(text)
    assert len(warnings) == 1
    assert warnings[0].startswith("routing.yml:10:27: warning: rules[0].when.region[1]: `EMAE`")
    assert "did you mean `EMEA`?" in warnings[0]


def test_an_email_domain_type_under_an_operator_or_in_a_qualify_rule_is_checked() -> None:
    text = MINIMAL + (
        "qualify:\n  - {name: Free, when: {email_domain_type: {in: [freee]}}, outcome: nurture}\n"
    )
    warnings = warnings_of(text)
    assert len(warnings) == 1
    assert "qualify[0].when.email_domain_type.in[0]: `freee` is not" in warnings[0]
    assert "(free, business; did you mean `free`?)" in warnings[0]


def test_values_leads_can_have_in_any_case_give_no_warning() -> None:
    text = MINIMAL.replace(
        "    assign:",
        "    when: {segment: smb, region: {ne: apac}, email_domain_type: Business}\n    assign:",
    )
    assert warnings_of(text) == []


def test_a_channel_given_by_its_name_is_a_warning_naming_where_its_id_is() -> None:
    text = MINIMAL.replace("members: [alice]", "members: [alice]\n    channel: '#sales'")
    text += "fallback: {queue: triage, channel: C0TRIAGE}\n"

    policy = parse_policy(text, source="routing.yml")
    warnings = [w.format("routing.yml") for w in policy.warnings if "channel" in w.path]

    assert warnings == [
        "routing.yml:6:5: warning: teams.core.channel: `#sales` is a channel's name, not its id: "
        "give the id (C…, at the bottom of the channel's About tab); a lost post is found again "
        "by the id"
    ]
