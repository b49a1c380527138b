from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.slack.commands import (
    USAGE,
    Command,
    Digest,
    Help,
    Pto,
    Queue,
    Versions,
    Why,
    parse_command,
)

NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")
# Tuesday 17 Nov 2026, 12:15 in New York.
TUESDAY = datetime(2026, 11, 17, 17, 15, tzinfo=UTC)
# Saturday 31 Oct 2026, 10:00 EDT: New York falls back to EST at 02:00 on Sunday 1 November.
BEFORE_FALL_BACK = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)


def parse(text: str, now: datetime = TUESDAY, tz: ZoneInfo = NEW_YORK) -> Command:
    return parse_command(text, now=now, tz=tz)


def new_york(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=NEW_YORK)


def problem(text: str, now: datetime = TUESDAY) -> str:
    command = parse(text, now)
    assert isinstance(command, Help), command
    assert command.problem is not None
    return command.problem


def until(text: str, now: datetime = TUESDAY, tz: ZoneInfo = NEW_YORK) -> datetime:
    command = parse(text, now, tz)
    assert isinstance(command, Pto), command
    assert command.until is not None
    assert command.until.tzinfo is tz
    return command.until


# Help


@pytest.mark.parametrize("text", ["", "   ", "\n", "help", "HELP", "  Help  ", "help pto"])
def test_empty_text_or_help_is_help_without_a_problem(text: str) -> None:
    assert parse(text) == Help()


def test_an_unknown_subcommand_is_help_naming_it() -> None:
    said = problem("vacation until friday")

    assert "`vacation`" in said
    assert "pto" in said


def test_policy_lists_the_versions_and_policy_activate_names_one() -> None:
    assert parse("policy") == Versions()
    assert parse("Policy ACTIVATE 3f2a9c1b") == Versions(activate="3f2a9c1b")
    assert "say which version" in problem("policy activate")
    assert "`policy activate VERSION`" in problem("policy rollback 3f2a9c1b")
    assert "`policy activate VERSION`" in problem("policy activate 3f2a9c1b now")


def test_the_usage_shows_every_subcommand_with_an_example() -> None:
    for example_text in (
        "pto",
        "pto until",
        "pto for",
        "pto off",
        "why",
        "queue",
        "digest",
        "policy",
        "policy activate",
        "help",
    ):
        assert f"`/routing {example_text}" in USAGE
    assert "@bob" in USAGE


def test_problems_quote_words_so_they_cannot_become_mentions_or_break_the_code_span() -> None:
    said = problem("pto <!channel> ```")

    assert "<!channel>" not in said
    assert "`&lt;!channel&gt;`" in said


def test_a_very_long_word_is_shortened_when_quoted() -> None:
    said = problem("pto " + "x" * 5000)

    assert len(said) < 200


# pto: when


def test_pto_alone_means_out_until_further_notice() -> None:
    assert parse("pto") == Pto(until=None, user=None)


def test_pto_off_means_back_now() -> None:
    assert parse("pto off") == Pto(until=None, user=None, back=True)


def test_pto_until_a_date_means_back_at_the_start_of_that_day_in_the_users_zone() -> None:
    assert until("pto until 2026-12-01") == new_york(2026, 12, 1)
    assert until("pto until 2026-12-01") == datetime(2026, 12, 1, 5, tzinfo=UTC)


def test_a_bare_date_means_until_that_date() -> None:
    assert until("pto 2026-12-01") == new_york(2026, 12, 1)


@pytest.mark.parametrize("day", ["friday", "fri", "FRIDAY", "Fri"])
def test_pto_until_a_weekday_means_back_at_the_start_of_the_next_one(day: str) -> None:
    assert until(f"pto until {day}") == new_york(2026, 11, 20)
    assert until(f"pto {day}") == new_york(2026, 11, 20)


def test_pto_until_the_weekday_it_is_today_means_the_same_day_next_week() -> None:
    friday_noon = datetime(2026, 11, 20, 17, tzinfo=UTC)

    assert until("pto until friday", friday_noon) == new_york(2026, 11, 27)
    assert until("pto until tuesday") == new_york(2026, 11, 24)


def test_the_weekday_is_counted_from_today_in_the_users_zone_not_in_utc() -> None:
    # 02:00 UTC on Friday is still Thursday evening in New York: friday is tomorrow there.
    thursday_evening = datetime(2026, 11, 20, 2, tzinfo=UTC)

    assert until("pto until friday", thursday_evening) == new_york(2026, 11, 20)


def test_pto_until_tomorrow_means_back_at_the_start_of_tomorrow() -> None:
    assert until("pto until tomorrow") == new_york(2026, 11, 18)
    assert until("pto Tomorrow") == new_york(2026, 11, 18)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("pto for 90m", timedelta(minutes=90)),
        ("pto for 4h", timedelta(hours=4)),
        ("pto for 3d", timedelta(days=3)),
        ("pto for 2w", timedelta(weeks=2)),
        ("pto 3d", timedelta(days=3)),
        ("pto 3D", timedelta(days=3)),
        ("pto until 3d", timedelta(days=3)),
    ],
)
def test_pto_for_a_duration_means_back_that_long_after_now(text: str, delta: timedelta) -> None:
    assert until(text) == TUESDAY + delta


def test_a_date_after_the_clocks_go_back_starts_at_midnight_standard_time() -> None:
    assert until("pto until sunday", BEFORE_FALL_BACK) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert until("pto until monday", BEFORE_FALL_BACK) == datetime(2026, 11, 2, 5, tzinfo=UTC)
    assert until("pto until 2026-11-02", BEFORE_FALL_BACK).utcoffset() == timedelta(hours=-5)


def test_days_keep_the_wall_clock_across_a_change_of_offset() -> None:
    back = until("pto for 3d", BEFORE_FALL_BACK)

    assert back == new_york(2026, 11, 3, 10)
    assert back - BEFORE_FALL_BACK == timedelta(hours=73)


def test_hours_count_real_time_across_a_change_of_offset() -> None:
    back = until("pto for 72h", BEFORE_FALL_BACK)

    assert back == BEFORE_FALL_BACK + timedelta(hours=72)
    assert (back.hour, back.utcoffset()) == (9, timedelta(hours=-5))


def test_a_day_that_lands_in_the_hour_skipped_in_spring_comes_back_just_after_it() -> None:
    # 02:30 EST on Saturday 7 March; 02:30 on Sunday does not exist in New York.
    saturday_night = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)

    back = until("pto for 1d", saturday_night)

    assert back == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert (back.hour, back.minute) == (3, 30)


def test_a_day_whose_midnight_is_skipped_starts_at_its_first_real_moment() -> None:
    # Chile moves from 24:00 on Saturday 5 September 2026 straight to 01:00 on Sunday.
    friday = datetime(2026, 9, 4, 15, tzinfo=UTC)

    back = until("pto until sunday", friday, SANTIAGO)

    assert (back.date().isoformat(), back.hour, back.utcoffset()) == (
        "2026-09-06",
        1,
        timedelta(hours=-3),
    )


# pto: what people type


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("pto until Dec 24", new_york(2026, 12, 24)),
        ("pto until december 24th", new_york(2026, 12, 24)),
        ("pto until 24 Dec", new_york(2026, 12, 24)),
        ("pto Dec 24", new_york(2026, 12, 24)),
        ("pto until next monday", new_york(2026, 11, 23)),
        ("pto next monday", new_york(2026, 11, 23)),
        ("pto until the day after tomorrow", new_york(2026, 11, 19)),
        ("pto until Jan 5", new_york(2027, 1, 5)),  # January next: the coming one
        ("pto until 24/12", new_york(2026, 12, 24)),  # only one reading is a date
        ("pto until 12/24/2026", new_york(2026, 12, 24)),
    ],
)
def test_a_date_written_in_words_means_back_at_the_start_of_that_day(
    text: str, back: datetime
) -> None:
    assert until(text) == back


def test_tomorrow_means_back_tomorrow() -> None:
    assert until("pto tomorrow") == new_york(2026, 11, 18)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("pto for 2 weeks", timedelta(weeks=2)),
        ("pto for a week", timedelta(weeks=1)),
        ("pto for 3 days", timedelta(days=3)),
        ("pto for 1 day", timedelta(days=1)),
        ("pto for 4 hours", timedelta(hours=4)),
        ("pto for 90 minutes", timedelta(minutes=90)),
        ("pto for 2 hrs", timedelta(hours=2)),
        ("pto 2 weeks", timedelta(weeks=2)),
        ("pto until in 3 days", timedelta(days=3)),
    ],
)
def test_a_duration_written_in_words_means_back_that_long_after_now(
    text: str, delta: timedelta
) -> None:
    assert until(text) == TUESDAY + delta


def test_a_time_of_day_means_back_then_in_the_users_zone() -> None:
    assert until("pto until 5pm") == new_york(2026, 11, 17, 17)
    assert until("pto until friday 9am") == new_york(2026, 11, 20, 9)


def test_words_are_read_in_the_users_zone_not_in_utc() -> None:
    # 02:00 UTC on Friday is Thursday evening in New York and Friday morning in Tokyo.
    thursday_evening = datetime(2026, 11, 20, 2, tzinfo=UTC)
    tokyo = ZoneInfo("Asia/Tokyo")

    assert until("pto until the day after tomorrow", thursday_evening) == new_york(2026, 11, 21)
    assert until("pto until the day after tomorrow", thursday_evening, tokyo) == datetime(
        2026, 11, 22, tzinfo=tokyo
    )


def test_a_date_that_could_be_either_day_or_month_first_is_help_showing_both() -> None:
    said = problem("pto until 12/01")

    assert "`12/01`" in said
    assert "1 December" in said and "12 January" in said


@pytest.mark.parametrize("text", ["pto until next week", "pto until december", "pto jan 2027"])
def test_a_week_month_or_year_is_help_asking_for_the_day(text: str) -> None:
    assert "give the day you will be back" in problem(text)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("pto until yesterday", "in the past"),
        ("pto until today", "is today"),
        ("pto until 9am", "in the past"),  # 12:15 in New York
        ("pto until Dec 24 2027", "at most a year"),
        ("pto for 400 days", "at most a year"),
        ("pto for 0 days", "no time at all"),
    ],
)
def test_a_phrase_in_the_past_or_too_far_is_help(text: str, said: str) -> None:
    assert said in problem(text)


def test_up_to_a_year_ahead_is_accepted() -> None:
    assert until("pto for 365d") == TUESDAY + timedelta(days=365)
    assert until("pto for 52w") == TUESDAY + timedelta(weeks=52)
    assert until("pto for 8760h") == TUESDAY + timedelta(hours=8760)
    assert until("pto until 2027-11-17") == new_york(2027, 11, 17)


@pytest.mark.parametrize(
    "when", ["366d", "53w", "8761h", "525601m", "2027-11-18", "9999-12-31", "9" * 5000 + "d"]
)
def test_more_than_a_year_ahead_is_help(when: str) -> None:
    assert "at most a year" in problem(f"pto until {when}")


@pytest.mark.parametrize("when", ["0d", "0m", "000h"])
def test_a_duration_of_nothing_is_help(when: str) -> None:
    assert "no time at all" in problem(f"pto for {when}")


def test_a_date_in_the_past_is_help() -> None:
    assert "in the past" in problem("pto until 2026-11-16")
    assert "in the past" in problem("pto until 2020-01-01")


def test_today_is_help_because_it_has_already_begun() -> None:
    assert "is today" in problem("pto until 2026-11-17")


@pytest.mark.parametrize("when", ["2026-13-45", "2026-02-30", "0000-01-01"])
def test_a_malformed_date_is_help_showing_the_format(when: str) -> None:
    said = problem(f"pto until {when}")

    assert f"`{when}` is not a date" in said
    assert "2026-12-01" in said


@pytest.mark.parametrize("text", ["pto until", "pto until @bob", "pto until <@U01BOB>"])
def test_until_without_a_date_is_help(text: str) -> None:
    assert problem(text) == "`pto until` needs a date such as Dec 24, next monday or 2026-12-01"


@pytest.mark.parametrize(
    ("text", "quoted"), [("pto until someday", "someday"), ("pto until 5", "5")]
)
def test_until_with_words_that_are_no_date_is_help_quoting_them(text: str, quoted: str) -> None:
    assert problem(text) == (
        f"`pto until` needs a date such as Dec 24, next monday or 2026-12-01, not `{quoted}`"
    )


@pytest.mark.parametrize(
    "text", ["pto for", "pto for friday", "pto for ever", "pto for 2026-12-01"]
)
def test_for_without_a_duration_is_help(text: str) -> None:
    assert problem(text).startswith("`pto for` needs a duration")


def test_a_number_without_a_unit_is_help_suggesting_one() -> None:
    assert "`2d`" in problem("pto 2")
    assert "`2d`" in problem("pto for 2")


def test_two_ends_are_help_naming_both() -> None:
    said = problem("pto until friday for 3d")

    assert "`friday`" in said
    assert "`3d`" in said


def test_off_with_a_date_is_help() -> None:
    assert "`pto off`" in problem("pto off until friday")


def test_words_that_are_no_date_are_help_quoting_them() -> None:
    assert "`friday please`" in problem("pto until friday please")
    assert "`pto` does not understand `please`" in problem("pto please")


def test_keywords_tolerate_case_and_extra_whitespace() -> None:
    assert parse("  PTO \t Until   FRIDAY  ") == Pto(until=new_york(2026, 11, 20), user=None)
    assert parse("Pto OFF") == Pto(until=None, user=None, back=True)


# pto: who


@pytest.mark.parametrize("mention", ["<@U01BOB|bob>", "<@U01BOB>", "<@W01BOB|bob.smith>"])
def test_a_mention_names_the_person_by_slack_id(mention: str) -> None:
    command = parse(f"pto until friday {mention}")

    assert isinstance(command, Pto)
    assert command.user == mention[2:].split("|")[0].rstrip(">")


def test_the_mention_and_the_date_can_come_in_any_order() -> None:
    friday = new_york(2026, 11, 20)
    expected = Pto(until=friday, user="U01BOB")

    assert parse("pto <@U01BOB|bob> until friday") == expected
    assert parse("pto until friday <@U01BOB|bob>") == expected
    assert parse("pto friday <@U01BOB>") == expected


def test_a_manager_can_end_someone_elses_time_off() -> None:
    assert parse("pto off <@U01BOB|bob>") == Pto(until=None, user="U01BOB", back=True)
    assert parse("pto <@U01BOB> off") == Pto(until=None, user="U01BOB", back=True)


def test_a_mention_whose_label_has_spaces_is_one_mention() -> None:
    assert parse("pto <@U01BOB|Bob Smith> 3d") == Pto(
        until=TUESDAY + timedelta(days=3), user="U01BOB"
    )


def test_two_people_are_help() -> None:
    assert "one person" in problem("pto <@U01BOB|bob> <@U02ANN|ann> until friday")


def test_a_plain_at_name_is_help_asking_for_slacks_autocomplete() -> None:
    said = problem("pto until friday @bob")

    assert "`@bob`" in said
    assert "autocomplete" in said


# why


@pytest.mark.parametrize("lead", ["L-1042", "00Q5e00000AbCdEFG", "Ann@Example.com"])
def test_why_keeps_the_lead_reference_as_given(lead: str) -> None:
    assert parse(f"why {lead}") == Why(lead)
    assert parse(f"  WHY   {lead}  ") == Why(lead)


def test_why_unwraps_an_email_slack_turned_into_a_mailto_link() -> None:
    assert parse("why <mailto:ann@example.com|ann@example.com>") == Why("ann@example.com")
    assert parse("why <mailto:ann@example.com>") == Why("ann@example.com")


def test_why_unwraps_an_id_slack_turned_into_a_web_link() -> None:
    assert parse("why <http://acme.io|acme.io>") == Why("acme.io")


def test_why_reads_back_what_slack_escaped() -> None:
    assert parse("why R&amp;D-7") == Why("R&D-7")


@pytest.mark.parametrize("text", ["why", "why   ", "why <mailto:|>"])
def test_why_without_a_lead_is_help(text: str) -> None:
    assert problem(text).startswith("`why` needs a lead")


def test_why_with_a_person_instead_of_a_lead_is_help() -> None:
    assert "not a person" in problem("why <@U01BOB|bob>")


def test_why_with_two_words_is_help_naming_the_extra_one() -> None:
    assert "`L-2`" in problem("why L-1 L-2")


# queue and digest


def test_queue_and_digest_take_no_arguments() -> None:
    assert parse("queue") == Queue()
    assert parse(" QUEUE ") == Queue()
    assert parse("digest") == Digest()
    assert parse("Digest") == Digest()


@pytest.mark.parametrize("text", ["queue all", "digest weekly"])
def test_queue_or_digest_with_an_argument_is_help_naming_it(text: str) -> None:
    assert f"`{text.split()[1]}`" in problem(text)


# Contract


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_command("pto", now=datetime(2026, 11, 17, 12), tz=NEW_YORK)


@given(text=st.text())
@example(text="pto until 9999-12-31")
@example(text="pto for " + "9" * 5000 + "m")
@example(text="why <mailto:")
@example(text="pto ٣d")
def test_any_text_gives_a_command_and_never_raises(text: str) -> None:
    command = parse(text)

    assert isinstance(command, Pto | Why | Queue | Digest | Help)
    if isinstance(command, Pto) and command.until is not None:
        assert TUESDAY < command.until <= TUESDAY + timedelta(days=366)
    if isinstance(command, Help) and command.problem is not None:
        assert "\n" not in command.problem


@given(
    words=st.lists(
        st.sampled_from(
            ["pto", "until", "for", "off", "friday", "3d", "2026-12-01", "<@U01BOB>", "@bob", "x"]
        ),
        max_size=6,
    )
)
def test_any_mix_of_pto_words_gives_a_command_and_never_raises(words: list[str]) -> None:
    command = parse(" ".join(["pto", *words]))

    assert isinstance(command, Pto | Help)
