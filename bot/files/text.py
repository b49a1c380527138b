"""A file checked to read as text from end to end, before its first row is read.

UTF-8 with or without a byte-order mark, and UTF-16 or UTF-32 (Excel's "Unicode Text") are read
as they are. A file in a legacy code page (Excel's plain "CSV" on Windows is Windows-1252 in
Western Europe and the Americas) is refused with the encoding it looks like, unless the caller
names one: from a few accented names a detector guesses wrong too often (charset-normalizer takes a
short Windows-1252 file with "José" for Mac Roman, and Russian Windows-1251 for Central European),
and a wrong guess would store every accented name misspelt.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from charset_normalizer import from_bytes

SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: File › Save As › CSV UTF-8)"

_CHUNK = 1 << 20
# What the detector sees of a file that is not UTF-8: enough for any header and many rows.
_SAMPLE = 1 << 20
# Files that are not text at all, by their first bytes.
_WORKBOOKS = (
    (b"PK\x03\x04", "an Excel workbook (or another zip file)"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook"),
)
# Longest first: the UTF-32 little-endian mark begins with the UTF-16 one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What the detector may answer for a file that is not UTF-8: the code pages spreadsheets and
# CRMs export in, and UTF-16 without its mark. Left to itself it answers DOS and Baltic code
# pages for a German file.
_CANDIDATES = (
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1257",
    "mac_roman",
    "cp932",
    "gb18030",
    "big5",
    "cp949",
    "utf_16_le",
    "utf_16_be",
)
# Names people know encodings by, for the sentences; keyed by Python's canonical codec name.
_KNOWN_AS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)",
    "mac-roman": "Mac Roman",
    "cp932": "Shift JIS (Japanese)",
    "gb18030": "GB18030 (Chinese)",
    "big5": "Big5 (Traditional Chinese)",
    "cp949": "Windows-949 (Korean)",
    "iso8859-1": "ISO-8859-1 (Latin-1)",
}


class InputFileError(Exception):
    """The file as a whole cannot be read (missing, unreadable, its encoding or columns)."""


def encoding_problem(name: str) -> str | None:
    """Why `name` is not an encoding Python can read (None when it is one)."""
    try:
        codecs.lookup(name)
    except LookupError:
        return f"--encoding {name}: no such encoding (such as cp1252, utf-16 or mac_roman)"
    return None


@dataclass(frozen=True, slots=True)
class TextFile:
    path: Path
    codec: str
    lines: int  # at least as many as the file has

    @contextmanager
    def reading(self) -> Iterator[TextIO]:
        """The file open as text; a decoding error (it changed after it was checked) is an
        InputFileError."""
        try:
            # newline="": the csv module reads line ends itself (and CRLF inside quoted values).
            handle = self.path.open(encoding=self.codec, newline="")
        except OSError as exc:
            raise InputFileError(f"{self.path}: cannot be read ({exc.strerror})") from None
        with handle:
            try:
                yield handle
            except UnicodeDecodeError:
                raise InputFileError(
                    f"{self.path}: changed while it was read, and is no longer "
                    f"{known_as(self.codec)}"
                ) from None


def open_text(path: Path, encoding: str | None = None) -> TextFile:
    """The file checked to read as text from end to end, or InputFileError saying why not.

    `encoding` is for a file that is neither UTF-8 nor marked with a byte-order mark."""
    head = _head(path)
    for magic, what in _WORKBOOKS:
        if head.startswith(magic):
            raise InputFileError(
                f"{path}: is {what}, not text: in Excel, choose File › Save As › CSV UTF-8, "
                "and give leadrouter that file"
            )
    marked = next((codec for mark, codec in _BYTE_ORDER_MARKS if head.startswith(mark)), None)
    codec = marked or "utf-8"
    lines, bad = _read_through(path, codec)
    if bad is None and (marked or b"\x00" not in head):
        return TextFile(path, codec, lines)
    if marked is not None:
        raise InputFileError(f"{path}: {_cannot_read(codec, bad)}; {SAVE_AS_UTF8}")
    guess = _guess(head) if encoding is None or b"\x00" in head else None
    if guess is not None and guess.startswith("utf_16"):
        # Without its mark, UTF-16 is told by the zero byte beside every ASCII letter: that
        # guess is safe, unlike one between code pages.
        lines, bad = _read_through(path, guess)
        if bad is None:
            return TextFile(path, guess, lines)
    if encoding is not None:
        lines, bad = _read_through(path, encoding)
        if bad is None:
            return TextFile(path, encoding, lines)
        raise InputFileError(
            f"{path}: {_cannot_read(encoding, bad)}; check its encoding, or {SAVE_AS_UTF8}"
        )
    if guess is not None and not guess.startswith("utf_16"):
        raise InputFileError(
            f"{path}: is not UTF-8 text: it looks like {known_as(guess)}. To read it, "
            f"{SAVE_AS_UTF8}, or name its encoding, such as --encoding {guess}"
        )
    where = f" ({_where(bad)})" if bad is not None else " (it holds zero bytes)"
    raise InputFileError(
        f"{path}: is not UTF-8 text{where}, and its encoding is not one leadrouter recognises; "
        f"{SAVE_AS_UTF8}, or name its encoding with --encoding"
    )


def known_as(codec: str) -> str:
    name = codecs.lookup(codec).name
    return _KNOWN_AS.get(name, name)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_SAMPLE)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror})") from None


@dataclass(frozen=True, slots=True)
class _BadByte:
    line: int | None  # None where lines cannot be counted in bytes (UTF-16, UTF-32)
    byte: int


def _read_through(path: Path, codec: str) -> tuple[int, _BadByte | None]:
    """Decode the whole file: the lines it has (an upper bound), and its first byte that does
    not decode, if any."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    name = codecs.lookup(codec).name
    ascii_lines = not name.startswith(("utf-16", "utf-32"))
    newlines = returns = 0
    ends_open = False
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = newlines + exc.object[: exc.start].count(b"\n") + 1
                return newlines, _BadByte(line if ascii_lines else None, exc.object[exc.start])
            newlines += text.count("\n")
            returns += text.count("\r")  # old Mac files end lines with CR alone
            if text:
                ends_open = text[-1] not in "\r\n"
            if not chunk:
                break
    return max(newlines, returns) + ends_open, None


def _cannot_read(codec: str, bad: _BadByte | None) -> str:
    where = f": {_where(bad)}" if bad is not None else ""
    return f"cannot be read as {known_as(codec)}{where}"


def _where(bad: _BadByte) -> str:
    line = f"line {bad.line} has" if bad.line is not None else "it has"
    return f"{line} the byte 0x{bad.byte:02X}, which is not a character there"


def _guess(head: bytes) -> str | None:
    """The encoding charset-normalizer finds most likely, among those files are exported in.
    Where several fit as well (Windows-1250 and -1252 read most Western names alike), the one
    files are most often exported in: `_CANDIDATES` is in that order."""
    matches = from_bytes(head, cp_isolation=list(_CANDIDATES))
    best = matches.best()
    if best is None:
        return None
    tied = {
        codecs.lookup(name).name
        for match in matches
        if match.chaos <= best.chaos
        for name in (match.encoding, *match.could_be_from_charset)
    }
    return next((c for c in _CANDIDATES if codecs.lookup(c).name in tied), best.encoding)
