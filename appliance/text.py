"""Small values as people write and read them: the true/false words, byte sizes and email addresses.

One place for each, so a form, a filter, a CSV cell, an environment variable,
the pages, the console and the command line all agree.
"""

from __future__ import annotations

import unicodedata

import regex

# The words a form, a filter, a CSV cell or an environment variable may use for true and false (any case).
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def bool_from_word(text: str) -> bool | None:
    """``True`` or ``False`` for one of :data:`TRUE_WORDS` / :data:`FALSE_WORDS` (any case, spaces around
    ignored); ``None`` for any other text."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


_UNITS = ("KB", "MB", "GB", "TB")


def format_bytes(size: float | None) -> str:
    """A size the one way people are shown it: powers of 1024, ``"512 bytes"``, ``"1.5 KB"``, ``"10 MB"``;
    ``None`` gives an em dash. A whole value has no decimals."""
    if size is None:
        return "—"
    if abs(size) < 1024:
        return f"{int(size)} byte{'' if int(size) == 1 else 's'}"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"


def email_key(text: str) -> str:
    """The form in which two typed email addresses are compared (and stored): surrounding spaces gone,
    compatibility characters folded (NFKC: a full-width letter is its plain one), lower case."""
    return unicodedata.normalize("NFKC", text.strip()).lower()


# Scripts whose letters pass for Latin ones (Cyrillic a, Greek omicron): an address that mixes them with
# Latin letters is a lookalike of another address, never one a person means.
_LOOKALIKE_SCRIPTS = ("Latin", "Cyrillic", "Greek", "Armenian", "Cherokee")
_SCRIPT_PATTERNS = {name: regex.compile(rf"\p{{Script={name}}}") for name in _LOOKALIKE_SCRIPTS}


def mixed_scripts(text: str) -> list[str]:
    """The lookalike scripts ``text`` mixes in one part (the local part, or one label of the domain), when
    it mixes two or more; an empty list when it does not."""
    found: set[str] = set()
    for part in regex.split(r"[@.]", text):
        here = {name for name, pattern in _SCRIPT_PATTERNS.items() if pattern.search(part)}
        if len(here) > 1:
            found |= here
    return sorted(found)
