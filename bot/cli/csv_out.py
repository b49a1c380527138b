"""The CSV a command writes (`report`, `replay`, `accounts audit`): on stdout for programs, or
with `--out FILE` for the spreadsheet the admin opens it in.

Stdout stays plain UTF-8, without a byte-order mark, whether it goes to a terminal, a pipe or a
file: a mark there would reach the first column's name of every script that reads it (Python's
`csv` with `utf-8`, `cut`, `psql \\copy`), and a program cannot tell `> report.csv` from a cron
job's `> /srv/feed.csv` that a loader reads. A file written with `--out` is for people: UTF-8
with the byte-order mark Excel needs to show accents (as the dashboard's downloads are), CRLF,
written beside itself and renamed into place, so that a run that fails leaves no half a file.
Stdout redirected to a file with accents in it gets a note on stderr pointing at `--out`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from rich.text import Text

from bot.cli.common import CliError, err
from bot.files.tables import spreadsheet_row

OUT_HELP = (
    "Write the CSV to this file, in UTF-8 with the byte-order mark Excel needs to show accents "
    "(the CSV on stdout has none: it is for programs)."
)
# For stdout redirected to a file (`> report.csv`) when the CSV holds a letter beyond ASCII.
EXCEL_NOTE = (
    "note: this CSV holds accented letters, which Excel shows garbled in a file redirected from "
    "stdout (it has no byte-order mark, for programs): `--out FILE.csv` writes one Excel reads"
)


class CsvSheet:
    """Rows written under a header, each cell as a spreadsheet takes it as text
    (`spreadsheet_row`: never run as a formula)."""

    def __init__(self, handle: TextIO, columns: Sequence[str], *, file: Path | None) -> None:
        self._file = file
        self._writer = csv.writer(handle, lineterminator="\n" if file is None else "\r\n")
        self.rows = 0  # under the header
        self.accented = False  # a letter beyond ASCII was written
        self._write(list(columns))

    def write(self, values: Sequence[str]) -> None:
        self._write(spreadsheet_row(values))
        self.rows += 1

    def _write(self, cells: list[str]) -> None:
        self.accented = self.accented or not all(cell.isascii() for cell in cells)
        try:
            self._writer.writerow(cells)
        except OSError as exc:
            if self._file is None:
                raise  # stdout's reader went away (`| head`): the command says what it does
            raise CliError(f"{self._file}: cannot be written ({exc.strerror or exc})") from None


@contextmanager
def csv_sheet(out_file: Path | None, columns: Sequence[str]) -> Iterator[CsvSheet]:
    """A sheet on stdout (`out_file` None) or in `out_file`, there only once the block ends
    without an error."""
    if out_file is None:
        sheet = CsvSheet(sys.stdout, columns, file=None)
        yield sheet
        if sheet.accented and _stdout_is_a_file():
            err.print(Text(EXCEL_NOTE, style="yellow"))
        return
    partial = out_file.with_name(f".{out_file.name}.partial")
    try:
        handle = partial.open("w", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CliError(f"{out_file}: cannot be written ({exc.strerror or exc})") from None
    try:
        with handle:
            yield CsvSheet(handle, columns, file=out_file)
        try:
            os.replace(partial, out_file)
        except OSError as exc:
            raise CliError(f"{out_file}: cannot be written ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def check_out_file(out_file: Path, inputs: dict[str, Path | None]) -> None:
    """A CliError, before any work, when `--out` cannot be written where it names (no such
    folder) or names one of the files the command reads: writing there would replace the file
    (an accounts export, the policy) it was made from."""
    folder = out_file.parent
    if not folder.is_dir():
        raise CliError(f"--out {out_file}: there is no folder {folder} to write it in")
    for what, path in inputs.items():
        if path is not None and _same_file(out_file, path):
            raise CliError(
                f"--out {out_file} is the {what} file itself: the CSV would replace it; "
                "name another file"
            )


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:  # either is not there (yet): compare where they would be
        return one.resolve() == other.resolve()


def _stdout_is_a_file() -> bool:
    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor (a test's captured output)
        return False
