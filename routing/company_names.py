"""Company names as the matcher reads them: words folded, legal forms dropped, blocking keys.

`company_key("The Müller GmbH & Co. KG")` is "muller"; a name's blocking keys are the strings
the account index and the storage layer list it under, so that a lead is only ever compared
with the few names sharing a key with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Legal forms, stripped from the end of a name, longest first and repeatedly, so "Acme Pty Ltd",
# "Nokia Oyj" and "Acme GmbH & Co. KG" all come down to the company's own words. Written as
# companies write them and normalised like names (`_LEGAL_SUFFIXES`): "S.A." is "sa", "A/S" is
# "a s", "Sp. z o.o." is "sp z oo". Checked in the tests against the `cleanco` package's legal
# terms of the countries leads mostly come from; a few forms are here in more than one spelling
# because names are written with and without spaces between the dotted parts.
_LEGAL_FORMS = (
    # English-speaking countries
    "Inc", "Incorporated", "Corp", "Corporation", "Co", "Company", "& Co", "& Company",
    "Ltd", "Limited", "Unlimited", "Unltd", "Ultd", "LLC", "PLLC", "LLP", "LLLP", "LP", "GP",
    "SP", "PLC", "ULC", "Ltée", "CIC", "CIO", "DAC", "CLG", "Teo", "Teoranta", "CPT", "NL",
    "Pty", "Pty Ltd", "Pty Limited", "Pte", "Pte Ltd", "Pvt", "Pvt Ltd", "Private Limited",
    "OPC", "PSU", "PSE", "Bhd", "Berhad", "Sdn Bhd", "Tapui", "Coop", "Ent", "Tbk",
    # German-speaking countries
    "GmbH", "gGmbH", "mbH", "AG", "SE", "KG", "KGaA", "OHG", "OG", "GbR", "GesbR", "UG",
    "UG (haftungsbeschränkt)", "e.K.", "e.V.", "e.G.", "e.U.", "PartG", "PartG mbB", "Stg",
    "GmbH & Co. KG", "mbH & Co. KG", "Sagl",
    # French, Belgian, Dutch, Luxembourgish
    "SA", "SAS", "SASU", "SARL", "Sàrl", "EURL", "SNC", "SCS", "SCA", "SCI", "SCOP", "SEM",
    "SEP", "GIE", "EI", "SELARL", "SICAV", "FCP", "SOGEPA", "BV", "NV", "BVBA", "CVBA",
    "CVOA", "SPRL", "SCRL", "SRL", "VOF", "CV", "Comm.V", "ESV", "VZW", "ASBL", "SECS",
    # Italian, Spanish, Portuguese, Latin American
    "SpA", "S.p.A.", "S.r.l.", "S.r.l.s.", "S.a.s.", "S.n.c.", "S.a.p.a.", "S.c.r.l.", "S.s.",
    "S.L.", "S.L.U.", "S.A.U.", "S.L.L.", "S.L.N.E.", "S.A.D.", "S.A.L.", "S.C.", "S.Coop",
    "S.Cra", "SCCL", "Lda", "Ltda", "Unipessoal Lda", "CRL", "SGPS", "EIRELI", "EIRL",
    "SA de CV", "S.A.B. de C.V.", "S.A.P.I. de C.V.", "S. de R.L.", "S. de R.L. de C.V.",
    "S. de. R.L.", "S.A.B.", "S.A.P.I.", "S. en C.", "S.C.P.A.", "S.C.E. I.", "S.G.R.",
    "Soc. Col.", "Soc.Col.",
    # Nordic and Baltic
    "AB", "AB (publ)", "publ", "HB", "KB", "AS", "ASA", "A/S", "ApS", "I/S", "K/S", "P/S",
    "G/S", "IVS", "AMBA", "FMBA", "SMBA", "ANS", "DA", "BA", "BL", "NUF", "SF", "KF", "IKS",
    "RHF", "HF", "FKF", "Etat", "Oy", "Oyj", "Oyj Abp", "Abp", "Ay", "Ky", "Tmi", "T:mi", "As Oy",
    "As. Oy", "As.Oy", "OK", "OÜ", "FIE", "SIA", "IK", "PS", "KS", "UAB", "IĮ", "IJ", "MB",
    "ehf", "hf", "ohf", "ses",
    # Central and Eastern Europe
    "Sp. z o.o.", "Sp. z o. o.", "Sp.z o.o.", "Sp. z.o.o.", "Spółka z o.o.", "Sp. j.", "Sp.j.",
    "Sp. k.", "Sp.k.", "Sp. p.", "Sp.p.", "S.K.A.", "P.P.", "s.r.o.", "spol. s r.o.", "a.s.",
    "akc. spol.", "v.o.s.", "veř. obch. spol.", "a spol.", "k.s.", "kom. spol.", "Kft", "Zrt",
    "Nyrt", "Bt", "Kkt", "Kht", "Rt", "e.v.", "e.c.", "k.v.", "d.o.o.", "d.d.", "d.n.o.",
    "k.d.", "s.p.", "obrt", "S.C.A.", "S.C.S.", "S.N.C.", "O.N.G.", "OOO", "OAO", "ZAO", "3AO",
    "ООО", "ОАО", "ЗАО", "ПАО", "АО", "PJSC", "OJSC", "CJSC", "JSC", "A.Ş.", "Ltd. Şti.",
    "Koop",
    # Greek, Israeli, Asian
    "A.E.", "E.E.", "E.P.E.", "M.E.P.E.", "O.E.", "O.V.E.E.", "I.K.E.", "B.M.", "K.K.",
    "G.K.", "Y.K.", "Kabushiki Kaisha", "Godo Kaisha", "Yugen Kaisha", "Co Ltd",
)  # fmt: skip

# Words too common to say which company a name is: kept in the name (they count in its score),
# but never used to find candidates, where they would only add noise ("t:and" alone can list
# thousands of accounts).
STOP_WORDS = frozenset({"and", "of", "the", "de", "du", "des", "la", "le", "y", "et", "und", "for"})
# Dots and apostrophes join what they separate ("S.A." -> "sa", "O'Brien" -> "obrien"); every
# other character that is not part of a word separates words ("Hewlett-Packard").
_JOINERS = re.compile(r"[.'’‘`´]")
_SEPARATORS = re.compile(r"[^\w\s]|_")
# What the two patterns do to ASCII text (nearly every name), as a table for `bytes.translate`,
# several times quicker than two regular expression passes (or `str.translate`): joiners
# deleted, every other separator a space (no ASCII character is a mark for `_keep_marks` to
# keep). Built from the patterns, so the two cannot disagree.
_ASCII_JOINERS = bytes([code for code in range(128) if _JOINERS.fullmatch(chr(code))])
_ASCII_SEPARATORS = bytes(
    [ord(" ") if code < 128 and _SEPARATORS.fullmatch(chr(code)) else code for code in range(256)]
)


def _keep_marks(found: re.Match[str]) -> str:
    # `\w` does not cover marks that survive accent stripping (Devanagari vowel signs, for
    # one); they are part of the word, so dropping them would split "टाटा" in two.
    char = found.group()
    return char if unicodedata.category(char).startswith("M") else " "


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    # Recomposing puts Hangul syllables (decomposed into jamo above) back together.
    return unicodedata.normalize("NFC", bare)


def _tokens(text: str) -> list[str]:
    text = text.replace("&", " and ")
    if text.isascii():
        ascii_text = text.encode("ascii").translate(_ASCII_SEPARATORS, _ASCII_JOINERS)
        return ascii_text.decode("ascii").split()
    text = _JOINERS.sub("", text)
    return _SEPARATORS.sub(_keep_marks, text).split()


def _name_tokens(name: str) -> list[str]:
    # Case is folded before accents are stripped: folding can itself produce combining marks
    # ("ǰ" folds to "j" + caron), which would otherwise survive the first pass but not a second.
    folded = unicodedata.normalize("NFKC", name).casefold()
    tokens = _tokens(folded if folded.isascii() else _strip_accents(folded))
    if not tokens:
        # A name made only of accents or marks: keep them rather than return nothing.
        tokens = _tokens(folded)
    return tokens


# The legal forms as a name's tokens: "&" is "and", dots are gone ("L.L.C." is "llc").
_LEGAL_SUFFIXES: frozenset[tuple[str, ...]] = frozenset(
    tuple(_name_tokens(form)) for form in _LEGAL_FORMS
)
# The legal suffixes by their last word, longest first: a name's last token picks the few
# suffixes that could end it, instead of slicing the name at every suffix length.
_SUFFIXES_ENDING_IN: dict[str, tuple[tuple[str, ...], ...]] = {
    last: tuple(sorted((s for s in _LEGAL_SUFFIXES if s[-1] == last), key=len, reverse=True))
    for last in {suffix[-1] for suffix in _LEGAL_SUFFIXES}
}


def normalise_name(name: str | None) -> str:
    if not name:
        return ""
    tokens = _name_tokens(name)
    while len(tokens) > 1 and tokens[0] == "the":
        del tokens[0]
    end = len(tokens)
    stripped = True
    while stripped and end:
        stripped = False
        for suffix in _SUFFIXES_ENDING_IN.get(tokens[end - 1], ()):
            length = len(suffix)
            if length <= end and tuple(tokens[end - length : end]) == suffix:
                end -= length
                stripped = True
                break
        # "Smith & Co Ltd" loses "co ltd" before "and co" can match; the "and" left dangling
        # belonged to the suffix.
        if stripped and end and tokens[end - 1] == "and":
            end -= 1
    # "AG" or "Company Limited" are all suffix; the whole name is a better key than nothing.
    return " ".join(tokens[:end] if end else tokens)


@lru_cache(maxsize=65536)
def company_key(name: str | None) -> str:
    """A company name normalised for matching; "" when the name has no letters or digits.

    "Société Générale S.A." -> "societe generale", "The Müller GmbH & Co. KG" -> "muller",
    "Acme, Inc." -> "acme". Letters and digits of every script are kept ("Яндекс" -> "яндекс").
    Applying it to its own result changes nothing.
    """
    return normalise_name(name)


def name_blocking_keys(key: str) -> frozenset[str]:
    """The blocking keys of a normalised name (a `company_key` result).

    "t:<token>" for every token of two or more characters, and "p:<first four characters of the
    key without spaces>" so that a typo in one word still shares a key with the right account.
    Two names can only be fuzzy-matched if they share at least one key.

    The keys are plain strings on purpose: the storage layer can keep (key, account id) rows in
    an indexed table, fetch the accounts that share any key with a lead (`WHERE key IN (...)`)
    and match the lead against an `AccountIndex` built from just those. The name match is the
    same as the full index's, because the posting lists of the lead's own keys are the same.
    """
    if not key:
        return frozenset()
    return frozenset(blocking_keys(key, key.split()))


def blocking_keys(key: str, tokens: Iterable[str]) -> set[str]:
    """`name_blocking_keys` of a non-empty `key` split into `tokens`, as a set: a lookup has
    split the key already, and only iterates over the keys."""
    # Tokens are cut to 60 characters: keys are stored in an indexed column, and no real
    # company word is that long.
    keys = {f"t:{token[:60]}" for token in tokens if len(token) >= 2 and token not in STOP_WORDS}
    keys.add(f"p:{key.replace(' ', '')[:4]}")
    return keys


def sort_tokens(key: str) -> str:
    return " ".join(sorted(key.split()))
