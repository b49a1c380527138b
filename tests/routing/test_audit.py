"""The accounts that are near-duplicates of each other under the matcher, in groups."""

from __future__ import annotations

from routing.audit import AUDIT_COLUMNS, DuplicateGroup, audit_rows, near_duplicates
from routing.model import Account

SAME_NAME = "same name once legal suffix, case and punctuation are removed"


def ids(groups: list[DuplicateGroup]) -> list[list[str]]:
    return [[account.id for account in group.accounts] for group in groups]


def test_namesakes_are_one_group_joined_by_the_same_name() -> None:
    accounts = [
        Account("A1", "Lura LLP", owner="alice"),
        Account("A2", "Lura Limited", owner="bob"),
        Account("A3", "Lura GmbH", owner="alice"),
        Account("Z1", "Zephyr Quarry Works"),
    ]

    groups = near_duplicates(accounts, threshold=90)

    assert ids(groups) == [["A1", "A2", "A3"]]
    assert [(p.first.id, p.second.id, p.score, p.reason) for p in groups[0].pairs] == [
        ("A1", "A2", 100.0, SAME_NAME),
        ("A1", "A3", 100.0, SAME_NAME),
        ("A2", "A3", 100.0, SAME_NAME),
    ]


def test_typos_of_each_other_are_one_group_with_their_score() -> None:
    accounts = [
        Account("N1", "Nova Heron Semiconductors"),
        Account("N2", "Nova Hreon Semiconductors Inc"),
    ]

    [group] = near_duplicates(accounts, threshold=90)

    [pair] = group.pairs
    assert (pair.first.id, pair.second.id) == ("N1", "N2")
    assert 90 <= pair.score < 100
    assert pair.reason == f"similar names, score {pair.score:.1f}"


def test_names_that_differ_in_a_distinctive_word_are_not_near_duplicates() -> None:
    accounts = [
        Account("N1", "Nova Heron Semiconductors"),
        Account("N3", "Nova Crown Semiconductors"),
    ]

    assert near_duplicates(accounts, threshold=90) == []


def test_a_chain_is_one_group_even_when_its_ends_are_not_near_duplicates() -> None:
    # "Harbour" ~ "Harbor", and "Logistics" ~ "Logistic", but not both at once.
    first = Account("K1", "Kestrel Harbour Logistics")
    middle = Account("K2", "Kestrel Harbor Logistics")
    last = Account("K3", "Kestrel Harbor Logistic")

    [group] = near_duplicates([last, first, middle], threshold=90)

    assert group.accounts == (first, middle, last)
    assert [(p.first.id, p.second.id) for p in group.pairs] == [("K1", "K2"), ("K2", "K3")]
    joined = {member.account.id: member.joined_by for member in group.members}
    assert joined["K1"] is None
    assert joined["K3"] is not None and joined["K3"].first is middle


def test_groups_come_by_their_lowest_id_and_their_accounts_by_id() -> None:
    accounts = [
        Account("b2", "Lura GmbH"),
        Account("c1", "Nova Hreon Semiconductors Inc"),
        Account("a9", "Nova Heron Semiconductors"),
        Account("b1", "Lura LLP"),
    ]

    assert ids(near_duplicates(accounts, threshold=90)) == [["a9", "c1"], ["b1", "b2"]]


def test_a_group_has_different_owners_when_a_lead_could_go_to_one_or_the_other() -> None:
    accounts = [
        Account("A1", "Lura LLP", owner="alice"),
        Account("A2", "Lura GmbH", owner="alice"),
        Account("B1", "Orbelin Castro", owner="bob"),
        Account("B2", "Orbelin Castro Inc"),
    ]

    same_owner, unowned = near_duplicates(accounts, threshold=90)

    assert (same_owner.owners, same_owner.different_owners) == (("alice",), False)
    # A lead matched to the account without an owner goes to the rules, not to bob.
    assert (unowned.owners, unowned.different_owners) == (("bob", None), True)


def test_namesakes_in_other_countries_say_so_with_their_lower_score() -> None:
    accounts = [Account("A1", "Lura LLP", country="US"), Account("A2", "Lura GmbH", country="DE")]

    [group] = near_duplicates(accounts, threshold=80)

    [pair] = group.pairs
    assert pair.score < 100
    assert pair.reason == f"{SAME_NAME}, other countries (US, DE), score {pair.score:.1f}"


def test_namesakes_in_other_countries_are_not_near_duplicates_over_their_score() -> None:
    accounts = [Account("A1", "Lura LLP", country="US"), Account("A2", "Lura GmbH", country="DE")]

    assert near_duplicates(accounts, threshold=95) == []


def test_the_same_name_written_twice_says_so() -> None:
    accounts = [Account("A1", "Lura GmbH"), Account("A2", "Lura GmbH"), Account("A3", "LURA GMBH")]

    [group] = near_duplicates(accounts, threshold=90)

    reasons = {(p.first.id, p.second.id): p.reason for p in group.pairs}
    assert reasons == {
        ("A1", "A2"): "same name",
        ("A1", "A3"): "same name but for case",
        ("A2", "A3"): "same name but for case",
    }


def test_the_csv_has_a_row_per_account_pointing_at_the_groups_first_account() -> None:
    accounts = [
        Account("K1", "Kestrel Harbour Logistics", "kestrel.com", "alice", country="GB"),
        Account("K2", "Kestrel Harbor Logistics", None, "bob", country="GB"),
        Account("K3", "Kestrel Harbor Logistic", None, None, country="GB", state="ENG"),
        Account("L1", "Lura LLP", owner="carol"),
        Account("L2", "Lura Limited", owner="carol"),
    ]
    groups = near_duplicates(accounts, threshold=90)
    pair = {p.second.id: p for group in groups for p in group.pairs}

    rows = audit_rows(groups)

    assert all(list(row) == list(AUDIT_COLUMNS) for row in rows)
    assert [list(row.values()) for row in rows] == [
        ["1", "K1", "Kestrel Harbour Logistics", "kestrel.com", "alice", "GB", "", "K1", "", ""],
        [
            "1",
            "K2",
            "Kestrel Harbor Logistics",
            "",
            "bob",
            "GB",
            "",
            "K1",
            f"{pair['K2'].score:.1f}",
            pair["K2"].reason,
        ],
        [
            "1",
            "K3",
            "Kestrel Harbor Logistic",
            "",
            "",
            "GB",
            "ENG",
            "K1",
            f"{pair['K3'].score:.1f}",
            # Joined through K2, not the group's first account: the reason says so.
            f"{pair['K3'].reason} (with K2, Kestrel Harbor Logistics)",
        ],
        ["2", "L1", "Lura LLP", "", "carol", "", "", "L1", "", ""],
        ["2", "L2", "Lura Limited", "", "carol", "", "", "L1", "100.0", SAME_NAME],
    ]


def test_no_accounts_have_no_near_duplicates() -> None:
    assert near_duplicates([], threshold=90) == []
    assert audit_rows([]) == []


def test_namesakes_make_a_group_leads_cannot_tell_apart_and_a_typo_copy_does_not() -> None:
    namesakes = near_duplicates(
        [Account("A1", "Lura LLP", owner="alice"), Account("A2", "Lura GmbH", owner="bob")],
        threshold=90,
    )
    typo_copy = near_duplicates(
        [
            Account("B1", "Nova Heron Semiconductors", owner="alice"),
            Account("B2", "Nova Hreon Semiconductors Inc", owner="bob"),
        ],
        threshold=90,
    )

    assert [group.ambiguous for group in namesakes] == [True]
    assert [group.ambiguous for group in typo_copy] == [False]
