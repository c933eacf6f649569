"""Time as the database stores it: naive datetimes in UTC.

Every timestamp column holds UTC without a zone (SQLite compares them as
text, so one form everywhere keeps comparisons right); answers carry them as
ISO 8601 with a ``Z``. Services take an optional ``now`` so that tests can
pass a fake clock's time.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time in UTC, without a zone (the stored form)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def as_stored(moment: dt.datetime | None) -> dt.datetime:
    """``moment`` (aware in any zone, or naive UTC) in the stored form; ``None`` means now."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def iso(moment: dt.datetime | None) -> str | None:
    """A stored timestamp as ISO 8601 in UTC (``2026-01-05T12:00:00Z``); ``None`` stays ``None``."""
    if moment is None:
        return None
    if isinstance(moment, str):  # a value read back raw from SQLite
        moment = dt.datetime.fromisoformat(moment)
    return as_stored(moment).isoformat(timespec="seconds") + "Z"


def aware(moment: dt.datetime | str | None) -> dt.datetime | None:
    """``moment`` as an aware UTC-zoned datetime: a stored (naive UTC) value, a raw SQLite text value,
    or an aware one (returned as it is); ``None`` stays ``None``."""
    if moment is None:
        return None
    if isinstance(moment, str):
        return parse_iso(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def shown_time(moment: dt.datetime | str | None) -> str:
    """``moment`` the one way people are shown a time: ``2026-11-25 13:51 UTC``; ``None`` or ``""`` gives ``""``
    and text that is not a timestamp is returned as it is."""
    if moment is None or moment == "":
        return ""
    try:
        value = aware(moment)
    except ValueError:
        return str(moment)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def parse_iso(text: str) -> dt.datetime:
    """An ISO 8601 timestamp (``Z`` or an offset, or naive meaning UTC) as an aware UTC datetime; the one
    parser of timestamps the appliance writes. Raises :class:`ValueError` for text that is not one."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    try:
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except OverflowError:  # "0001-01-01T00:00+13:00" is before the first moment a datetime holds
        raise ValueError(f"{text[:40]!r} is outside the dates this appliance stores") from None
