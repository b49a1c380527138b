"""Commands on a policy and a file of leads, writing nothing: check, simulate, demo."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.card import card_content
from bot.cli.common import (
    LEADS_FILE_HELP,
    CliError,
    EncodingOption,
    RulesOption,
    account_index,
    app,
    err,
    examples_dir,
    friendly,
    lead_file,
    out,
    parse_now,
    read_policy,
    say_env_file_problems,
    valid_leads,
    where_policy,
)
from bot.policy_file import PolicyFileMissing, default_policy_path, load_policy
from routing.decision import Decision
from routing.explain import explain
from routing.model import Outcome, OutOfOffice
from routing.policy import Policy, PolicyError
from routing.simulation import Simulation, team_shares


@app.command()
@friendly
def check(
    file: Annotated[Path | None, typer.Argument(help="The policy file to check.")] = None,
    leads: Annotated[
        Path | None,
        typer.Option(
            help="Also route this file of leads in memory and say, for each field the rules "
            "read, how many lack it and how many of those no rule matched for want of it."
        ),
    ] = None,
    accounts: Annotated[
        Path | None,
        typer.Option(help="Accounts CSV to match --leads against, as `simulate` does."),
    ] = None,
    encoding: EncodingOption = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="The policy file, as the other commands take it."),
    ] = None,
) -> None:
    """Check a policy file: exit 0 with a summary, or 1 with every error and its line. With
    --leads, also the data health of a file of leads before going live: the fields the rules
    read that leads lack, and how many reach the fallback queue for want of each."""
    if file is not None and rules is not None and file != rules:
        raise CliError(f"give the policy once: {file} or --rules {rules}, not both")
    if file is None and rules is None:
        say_env_file_problems()  # where LEADROUTER_RULES is looked for
    path = file or rules or default_policy_path()
    try:
        policy = load_policy(path)
    except PolicyFileMissing as exc:
        from bot.cli.which_policy import write_back  # the database's modules: only now

        advice = write_back(path) or where_policy(rules_option=False)
        err.print(Text(f"{exc.report()}. {advice}"))
        raise typer.Exit(1) from None
    except PolicyError as exc:
        err.print(Text(exc.report()))
        errors = sum(1 for p in exc.problems if p.severity == "error")
        err.print(f"{path}: {errors} error{'s' if errors != 1 else ''}")
        raise typer.Exit(1) from None
    for warning in policy.warnings:
        err.print(Text(warning.format(str(path))))
    counts = (
        (len(policy.reps), "rep"),
        (len(policy.teams), "team"),
        (len(policy.rules), "rule"),
        (len(policy.qualify), "qualification rule"),
        (len(policy.managers), "manager"),
        *(((len(policy.warnings), "warning"),) if policy.warnings else ()),
    )
    said = ", ".join(f"{n} {what}{'s' * (n != 1)}" for n, what in counts)
    out.print(Text(f"{path}: ok: {said}"))
    if leads is not None:
        from bot.cli.report import print_file_health

        moment = datetime.now(policy.timezone)
        simulation = Simulation(policy, moment, account_index(accounts, policy, encoding))
        decisions = [
            simulation.route(lead) for lead in valid_leads(lead_file(leads, encoding, policy))
        ]
        print_file_health(policy, decisions, file=leads, now=moment)


@app.command()
@friendly
def simulate(
    leads: Annotated[Path, typer.Argument(help=LEADS_FILE_HELP)],
    rules: RulesOption = None,
    accounts: Annotated[
        Path | None, typer.Option(help="Accounts CSV: id,name,domain,owner,tier,country,state.")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="Route as if it were this ISO-8601 time (default: now).")
    ] = None,
    ooo: Annotated[
        list[str] | None, typer.Option("--ooo", help="Mark this rep out of office.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per lead per line.")
    ] = False,
    explain_all: Annotated[
        bool, typer.Option("--explain", help="Print the full explanation of each lead.")
    ] = False,
    encoding: EncodingOption = None,
) -> None:
    """Dry-run the policy over a file of leads. Writes nothing anywhere.

    Without a policy file (and without --rules), the version active in the database
    (DATABASE_URL) is the policy."""
    from bot.cli.which_policy import policy_or_active

    policy = policy_or_active(rules)
    moment = parse_now(now, policy)
    away = _out_of_office(ooo or [], policy)
    file = lead_file(leads, encoding, policy)
    simulation = Simulation(policy, moment, account_index(accounts, policy, encoding), away)
    if as_json:
        for lead in valid_leads(file):
            decision = simulation.route(lead)
            out.print(json.dumps(decision_json(decision)), soft_wrap=True, markup=False)
        return
    decisions = [simulation.route(lead) for lead in valid_leads(file)]
    _print_results(policy, decisions, explain_all=explain_all)


def _out_of_office(rep_ids: list[str], policy: Policy) -> dict[str, OutOfOffice]:
    unknown = [r for r in rep_ids if r not in policy.reps]
    if unknown:
        raise CliError(
            f"--ooo {unknown[0]}: no rep with that id in the policy "
            f"(reps: {', '.join(policy.reps)})"
        )
    return {r: OutOfOffice(reason="marked out of office for this run") for r in rep_ids}


def decision_json(decision: Decision) -> dict[str, object]:
    return {
        "id": decision.lead_id,
        "outcome": decision.outcome.value,
        "rep": decision.rep,
        "team": decision.team,
        "rule": decision.rule,
        "reason": decision.reason,
        "sla_seconds": decision.sla_seconds,
    }


def _print_results(policy: Policy, decisions: list[Decision], *, explain_all: bool) -> None:
    leads = f"{len(decisions)} lead{'s' * (len(decisions) != 1)}"
    table = Table(title=f"{leads} routed", box=box.SIMPLE_HEAD, expand=True)
    for column in ("lead", "rep", "team"):
        table.add_column(column, no_wrap=True)
    # At least as wide as the longest word of a rule's name (up to a point), so that a name
    # breaks between its words: "Enterprise" cut into "Enterpri" and "se" reads as two words.
    # (With a ratio, rich takes `width` as the column's least width, and ignores `min_width`.)
    words = [len(word) for d in decisions for word in (d.rule or "").split()]
    table.add_column("rule", ratio=1, overflow="fold", width=min(max(words, default=4), 16))
    table.add_column("reason", ratio=3, overflow="fold")
    for d in decisions:
        rep = policy.rep_name(d.rep) if d.rep else f"({d.outcome.value})"
        # Lead data is shown as plain Text so a company named "[red]" is not read as markup.
        table.add_row(
            *(
                Text(cell)
                for cell in (d.lead_id, rep, d.team or d.queue or "", d.rule or "", d.reason)
            )
        )
    out.print(table)
    outcomes = {o: sum(1 for d in decisions if d.outcome is o) for o in Outcome}
    out.print("  ".join(f"{o.value}: {n}" for o, n in outcomes.items()))
    for team, shares in team_shares(policy, decisions).items():
        dist = Table(
            title=f"team {team} · {policy.teams[team].distribution.value.replace('_', ' ')}"
        )
        # `expected` is a count: the team's leads times the rep's share of its distribution.
        for column in ("rep", "leads", "expected leads"):
            dist.add_column(column, justify="left" if column == "rep" else "right")
        for share in shares:
            dist.add_row(
                Text(policy.rep_name(share.rep)), str(share.count), f"{share.expected:.1f}"
            )
        out.print(dist)
    if explain_all:
        for d in decisions:
            out.print()
            out.print(explain(d, policy), markup=False)


DEMO_NOW = "2026-11-17T17:15:00+00:00"  # a Tuesday: New York 12:15, Los Angeles 09:15, London 17:15
DEMO_OUT_OF_OFFICE = "carol"


def _interesting(decisions: list[Decision]) -> Decision:
    """The lead whose card best shows off a reason: a fallback, else a skipped rep, else any."""
    assigned = [d for d in decisions if d.outcome is Outcome.ASSIGNED]
    for wanted in (lambda d: d.fallback_used, lambda d: " is " in d.reason):
        for decision in assigned:
            if wanted(decision):
                return decision
    return assigned[0]


def _card_as_text(policy: Policy, decision: Decision, moment: datetime) -> str:
    """The card the rep would get in Slack, the very blocks drawn as text, in the rep's zone."""
    # Imported here: slack_sdk's Block Kit is not needed by the other commands.
    from bot.slack.cards import CardView, offer_card
    from bot.slack.preview import as_text

    content = card_content(decision, policy, offered_at=moment)
    message = offer_card(CardView(lead_id=decision.lead_id, content=content))
    return as_text(message, tz=policy.reps[decision.rep or ""].tz)


@app.command()
@friendly
def demo(
    now: Annotated[str, typer.Option(help="The moment the demo routes at (ISO-8601).")] = DEMO_NOW,
) -> None:
    """Route ~50 realistic leads with the example policy: table, distribution, and one card."""
    folder = examples_dir()
    policy = read_policy(folder / "routing.yml")
    moment = parse_now(now, policy)
    back = datetime(2026, 11, 23, 9, tzinfo=policy.reps[DEMO_OUT_OF_OFFICE].tz)
    away = {DEMO_OUT_OF_OFFICE: OutOfOffice(until=back, reason="vacation")}
    simulation = Simulation(
        policy, moment, account_index(folder / "demo-accounts.csv", policy), away
    )
    leads = lead_file(folder / "demo-leads.csv", None)
    decisions = [simulation.route(lead) for lead in valid_leads(leads)]
    out.print(
        f"[bold]leadrouter demo[/bold]: the example policy ({folder / 'routing.yml'}) routing "
        f"{len(decisions)} leads at {moment:%a %d %b %Y %H:%M %Z}, with "
        f"{policy.rep_name(DEMO_OUT_OF_OFFICE)} out of office. Nothing is written anywhere."
    )
    _print_results(policy, decisions, explain_all=False)
    sample = _interesting(decisions)
    # soft_wrap off for panels: their long lines must wrap inside the border, not be cut.
    card_panel = Panel(
        Text(_card_as_text(policy, sample, moment)),
        title="How the assignment card reads in Slack",
        subtitle=f"{policy.rep_name(sample.rep)}'s DM",
        expand=False,
    )
    out.print(card_panel, soft_wrap=False)
    why_panel = Panel(
        Text(explain(sample, policy)), title=f"leadrouter why {sample.lead_id}", expand=False
    )
    out.print(why_panel, soft_wrap=False)
    out.print(
        "Try: leadrouter simulate examples/demo-leads.csv --rules examples/routing.yml "
        "--accounts examples/demo-accounts.csv --now 2026-11-17T17:15:00Z --ooo carol --explain"
    )
