"""The `leadrouter` command line: thin wrappers that read files, call the core, and print.

Every failure a user can cause (a bad policy, a missing file, a malformed flag) ends in a sentence
and exit code 1, never a traceback. The commands live by family: `policy` (check, simulate,
demo), `database` (serve, import, accounts import, db upgrade), `accounts` (the audit), `checks`
(jobs, crm check, slack check), `crm` (crm retry), `versions` (policy history, show, activate),
`replay`, `report` (the routing report), `why` (a stored lead's explanation), `experiments`
(list, promote, stop); what they share is in `common`.
"""

from __future__ import annotations

# Each module registers its commands as it is imported, in the order `--help` lists them.
# isort: off
from bot.cli import policy  # noqa: F401
from bot.cli import database  # noqa: F401
from bot.cli import accounts  # noqa: F401
from bot.cli import checks  # noqa: F401
from bot.cli import crm  # noqa: F401
from bot.cli import versions  # noqa: F401
from bot.cli import replay  # noqa: F401
from bot.cli import report  # noqa: F401
from bot.cli import why  # noqa: F401
from bot.cli import experiments  # noqa: F401
from bot.cli.common import app

# isort: on


def main() -> None:
    app()
