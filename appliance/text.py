"""Small values as people write and read them: the true/false words and byte sizes.

One place for each, so a form, a filter, a CSV cell, an environment variable,
the pages, the console and the command line all agree.
"""

from __future__ import annotations

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
