"""Job schedules as text: a five-field cron expression, ``every <n><s|m|h|d>``, or a plain form.

The plain forms, for people who do not write cron: ``daily 02:00``, ``weekdays 07:30``,
``weekly sunday 04:45`` (``mon`` … ``sun`` or the full name) and ``every 6 hours``
(minutes, hours, days). They are stored normalised: the first three as the cron
expression they mean, the last as ``every 6h``. Times are UTC.

Kept free of any other appliance module so that the settings registry can
validate a schedule setting without import cycles.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|m|h|d|secs?|seconds?|mins?|minutes?|hours?|days?)$")
_PLAIN = re.compile(r"^(daily|weekdays|weekly)\b\s*(.*)$")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")
_FULL_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
# What every refusal of a plain form reminds the person of.
PLAIN_FORMS = "'daily 02:00', 'weekdays 07:30', 'weekly sunday 04:45', 'every 6 hours' or a cron expression"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 10
# The longest interval: a year and a day. Longer ones are typing mistakes, and past a few thousand
# years the scheduler's date arithmetic overflows (year 9999).
MAX_INTERVAL_SECONDS = 366 * 86400


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``kind`` is ``"cron"`` or ``"interval"``; ``text`` is its normal form."""

    kind: str
    text: str
    seconds: int = 0

    def trigger(self, timezone: Any = None, start: dt.datetime | None = None) -> Any:
        """The APScheduler trigger for this schedule."""
        if self.kind == "interval":
            from apscheduler.triggers.interval import IntervalTrigger

            return IntervalTrigger(seconds=self.seconds, timezone=timezone, start_date=start)
        return _cron_trigger(self.text, timezone)

    def next_after(self, moment: dt.datetime, timezone: Any = None) -> dt.datetime | None:
        """The first fire time strictly after ``moment`` (aware), for a cron schedule or an interval from ``moment``."""
        if self.kind == "interval":
            return moment + dt.timedelta(seconds=self.seconds)
        trigger = self.trigger(timezone)
        fire_time: dt.datetime | None = trigger.get_next_fire_time(None, moment + dt.timedelta(microseconds=1))
        return fire_time


def parse_schedule(text: str) -> Schedule:
    """Parse ``text``; raises ``ValueError`` whose message says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a schedule is required: {PLAIN_FORMS} such as '0 2 * * *'")
    lowered = " ".join(text.split()).lower()
    plain = _PLAIN.match(lowered)
    if plain:
        return Schedule("cron", _plain_to_cron(plain.group(1), plain.group(2), text))
    cleaned = lowered if lowered.startswith("every") else " ".join(text.split())
    match = _INTERVAL.match(cleaned)
    if match:
        digits, unit = match.group(1).lstrip("0") or "0", match.group(2)[0]
        # Compare the digit count first so that a number thousands of digits long is never multiplied.
        seconds = int(digits) * _UNITS[unit] if len(digits) <= 12 else MAX_INTERVAL_SECONDS + 1
        if seconds < MIN_INTERVAL_SECONDS:
            raise ValueError(f"an interval must be at least {MIN_INTERVAL_SECONDS} seconds")
        if seconds > MAX_INTERVAL_SECONDS:
            raise ValueError("an interval can be at most 366 days ('every 366d'); use a cron expression for rarer runs")
        return Schedule("interval", f"every {digits}{unit}", seconds)
    if cleaned.lower().startswith("every"):
        raise ValueError(
            f"{text!r} is not an interval: write 'every' then a number and minutes, hours or days "
            "(e.g. 'every 6 hours' or 'every 6h')"
        )
    fields = cleaned.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{text!r} has {len(fields)} field(s); a cron expression has 5 (minute hour day month weekday). "
            "Or write a plain form: 'daily 02:00', 'weekdays 07:30', 'weekly sunday 04:45' or 'every 6 hours'"
        )
    try:
        trigger = _cron_trigger(cleaned, dt.UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    # A valid expression can still name a day that never comes (30 February, 31 April): refuse it
    # rather than store a job that never runs. A real schedule fires within about 28 years (the
    # weekday and leap-day cycles), so look from a fixed moment, not from now.
    if trigger.get_next_fire_time(None, _NEVER_CHECK_FROM) is None:
        raise ValueError(f"{text!r} never fires: no date matches its day, month and weekday fields")
    return Schedule("cron", cleaned)


def _time_of_day(value: str, text: str) -> tuple[int, int]:
    """``"07:30"`` as ``(7, 30)``; a ValueError naming the form otherwise."""
    match = _TIME_OF_DAY.match(value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        shown = f"{value!r} is not a time of day" if value else "the time of day is missing"
        raise ValueError(f"{text.strip()!r}: {shown}; write it as HH:MM from 00:00 to 23:59 (UTC), e.g. 'daily 02:00'")
    return int(match.group(1)), int(match.group(2))


def _plain_to_cron(kind: str, rest: str, text: str) -> str:
    """``daily 02:00`` -> ``0 2 * * *``, ``weekdays 07:30`` -> ``30 7 * * 1-5``, ``weekly sun 04:45`` -> ``45 4 * * 0``."""
    parts = rest.split()
    number = 0
    if kind == "weekly":
        if not parts:
            raise ValueError(f"{text.strip()!r}: name the day and the time, e.g. 'weekly sunday 04:45'")
        day = parts[0]
        if day in _FULL_DAY_NAMES:
            number = _FULL_DAY_NAMES.index(day)
        elif day in _DAY_NAMES:
            number = _DAY_NAMES.index(day)
        else:
            raise ValueError(
                f"{text.strip()!r}: {day!r} is not a day of the week; write mon … sun or monday … sunday, "
                "e.g. 'weekly sunday 04:45'"
            )
        parts = parts[1:]
    if len(parts) > 1:
        raise ValueError(f"{text.strip()!r}: write one time of day (HH:MM) after {kind!r}, e.g. 'daily 02:00'")
    hour, minute = _time_of_day(parts[0] if parts else "", text)
    weekday = {"daily": "*", "weekdays": "1-5"}.get(kind, str(number))
    return f"{minute} {hour} * * {weekday}"


def schedule_problem(text: str) -> str | None:
    """The reason ``text`` is not a schedule, or ``None`` when it is one (for settings checks)."""
    try:
        parse_schedule(text)
    except ValueError as exc:
        return str(exc)
    return None


_NEVER_CHECK_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_day(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in _DAY_NAMES and len(token) >= 3:
        return _DAY_NAMES.index(token[:3])
    if not token.isdigit() or int(token) > 7:
        raise ValueError(f"{token!r} is not a weekday (0-7 or sun-sat)")
    return int(token) % 7


def _weekdays(field: str) -> str:
    """The weekday field of standard cron (0 or 7 = Sunday) as APScheduler's names.

    APScheduler 3 numbers weekdays from Monday = 0, so ``0 2 * * 0`` would
    run on Mondays if handed over as it is; names mean the same to both.
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"{part!r} has a bad step")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _cron_day(start), _cron_day(end)
            if end.strip() == "7":
                last = 7
            if last < first:
                raise ValueError(f"{base!r} runs backwards")
        else:
            first = _cron_day(base)
            last = 6 if step else first
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _cron_trigger(text: str, timezone: Any) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekday = text.split(" ")
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday), timezone=timezone
    )
