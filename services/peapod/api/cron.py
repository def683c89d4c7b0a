"""Cron schedules as Kubernetes reads them: robfig/cron v3's ``ParseStandard`` and ``Next``.

Kubernetes' CronJob controller parses ``spec.schedule`` with robfig/cron,
so peapod follows that parser rather than Vixie cron or a Python library,
down to its error messages (they are the API's validation errors) and three
rules that other cron implementations (croniter, cronsim) answer differently:

* five fields (minute, hour, day of month, month, day of week) or one of the
  descriptors ``@yearly @annually @monthly @weekly @daily @midnight
  @hourly``; a field is a comma list of ``*``, ``?``, ``N``, ``N-M``,
  ``*/S``, ``N/S`` (``N`` to the field's maximum) or ``N-M/S``; months and
  weekdays also by name (``jan``, ``mon``, any case); the day of week runs
  0-6, so ``7`` is refused;
* day of month and day of week: when either field is a star (``*`` or
  ``?``, alone or with step 1, as ``*/1``), a day must match both; when
  neither is (``1-31``, ``*/2`` and ``mon-fri`` are not stars), either
  one is enough;
* ``Next`` walks the wall clock of the schedule's time zone as robfig
  does, days by the calendar and hours and minutes as elapsed time: a time
  that a daylight-saving change skips does not run that day, and in an hour
  that it repeats, a schedule of every N minutes fires in both.

``@every <duration>`` is robfig's constant-delay schedule, which
``ParseStandard`` also accepts: the duration in Go's syntax (``90s``,
``1h30m``, ``1.5h``), cut to whole seconds and at least one; each run
comes that long after the last (or after the CronJob's creation), whatever
the time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

MINUTES, HOURS, DOM, MONTHS, DOW = (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)
MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_ALL_DOW = frozenset(range(7))
_ALL_DOM = frozenset(range(1, 32))
_ALL_MONTHS = frozenset(range(1, 13))
_ALL_HOURS = frozenset(range(24))
_INT = re.compile(r"^[+-]?[0-9]+$")
YEARS_SEARCHED = 5  # robfig gives up (zero time) after five years without a match


class CronError(ValueError):
    """A schedule robfig/cron refuses; the message is robfig's."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool = False
    dow_star: bool = False

    def day_matches(self, t: datetime) -> bool:
        dom_match = t.day in self.dom
        dow_match = (t.weekday() + 1) % 7 in self.dow  # Go: Sunday is 0
        if self.dom_star or self.dow_star:
            return dom_match and dow_match
        return dom_match or dow_match

    def next(self, after: datetime, zone: tzinfo) -> datetime | None:
        """The first time after ``after`` (aware) that the schedule fires in ``zone``; None
        if none within five years (robfig's zero time). The result is in ``zone``."""
        t = _absolute(after.astimezone(zone).replace(microsecond=0), timedelta(seconds=1), zone)
        moved, limit = False, t.year + YEARS_SEARCHED
        while t.year <= limit:
            t, moved, wrapped = self._step(t, moved, zone)
            if not wrapped:
                return t
        return None

    def _step(self, t: datetime, moved: bool, zone: tzinfo) -> tuple[datetime, bool, bool]:
        """One pass of robfig's loop: (time, moved, whether it wrapped and must start over)."""
        while t.month not in self.months:
            if not moved:
                moved, t = True, _wall(zone, t.year, t.month, 1)
            t = _wall(zone, t.year, t.month + 1, t.day, t.hour, t.minute)
            if t.month == 1:
                return t, moved, True
        while not self.day_matches(t):
            if not moved:
                moved, t = True, _wall(zone, t.year, t.month, t.day)
            t = _wall(zone, t.year, t.month, t.day + 1, t.hour, t.minute)
            if t.hour != 0:  # a daylight-saving change moved midnight: back onto it
                shift = 24 - t.hour if t.hour > 12 else -t.hour
                t = _absolute(t, timedelta(hours=shift), zone)
            if t.day == 1:
                return t, moved, True
        while t.hour not in self.hours:
            if not moved:
                moved, t = True, _wall(zone, t.year, t.month, t.day, t.hour)
            t = _absolute(t, timedelta(hours=1), zone)
            if t.hour == 0:
                return t, moved, True
        while t.minute not in self.minutes:
            if not moved:
                moved, t = True, t.replace(second=0)
            t = _absolute(t, timedelta(minutes=1), zone)
            if t.minute == 0:
                return t, moved, True
        if t.second != 0:  # the seconds field is 0: on to the next whole minute
            moved, t = True, _absolute(t, timedelta(seconds=60 - t.second), zone)
            return t, moved, True
        return t, moved, False


@dataclass(frozen=True)
class ConstantDelay:
    """robfig's ``ConstantDelaySchedule`` (``@every``): ``Next`` is ``t`` plus the delay,
    less ``t``'s fraction of a second."""

    seconds: int

    def next(self, after: datetime, zone: tzinfo) -> datetime | None:
        return after.astimezone(zone).replace(microsecond=0) + timedelta(seconds=self.seconds)


CronSchedule = Schedule | ConstantDelay

_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
             "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_GO_MAX_DURATION = 2**63 - 1


def go_parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds, with its error messages."""
    invalid = CronError(f'time: invalid duration "{text}"')
    rest, sign = text, 1
    if rest[:1] in ("-", "+"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        match = _GO_DURATION_PART.match(rest)
        assert match is not None  # every part of the pattern may be empty
        whole, fraction, unit = match.groups()
        if not whole and not fraction:
            raise invalid
        if not unit:
            raise CronError(f'time: missing unit in duration "{text}"')
        if unit not in _GO_UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration "{text}"')
        scale = _GO_UNITS[unit]
        total += int(whole or "0") * scale + int(fraction or "0") * scale // 10 ** len(fraction or "")
        if total > _GO_MAX_DURATION:
            raise invalid
        rest = rest[match.end():]
    return sign * total


def _every(spec: str) -> ConstantDelay:
    """robfig's ``Every``: at least a second, cut to whole seconds."""
    try:
        nanoseconds = go_parse_duration(spec[len("@every "):])
    except CronError as exc:
        raise CronError(f"failed to parse duration {spec}: {exc}") from None
    return ConstantDelay(max(nanoseconds // 10**9, 1))


def _absolute(t: datetime, delta: timedelta, zone: tzinfo) -> datetime:
    """Go's ``t.Add``: elapsed time, whatever the wall clock does meanwhile."""
    return (t.astimezone(UTC) + delta).astimezone(zone)


def _wall(zone: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
          ) -> datetime:
    """Go's ``time.Date``: a wall-clock time in ``zone``, out-of-range parts carried over
    (month 13 is January of the next year, day 32 the next month's first)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    day0 = date(year, month, 1) + timedelta(days=day - 1)
    naive = datetime(day0.year, day0.month, day0.day, hour, minute)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not _INT.match(text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": '
                        "invalid syntax")
    value = int(text)
    if value < 0:
        raise CronError(f"negative number ({value}) not allowed: {text}")
    return value


def _range(expr: str, bounds: tuple[int, int], names: dict[str, int] | None
           ) -> tuple[set[int], bool]:
    """robfig's ``getRange``: the values of one comma-separated part, and its star bit."""
    low, high = bounds
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = low_and_high[0] in ("*", "?")
    if star:
        start, end = low, high
    else:
        start = _number(low_and_high[0], names)
        if len(low_and_high) > 2:
            raise CronError(f"too many hyphens: {expr}")
        end = _number(low_and_high[1], names) if len(low_and_high) == 2 else start
    if len(range_and_step) > 2:
        raise CronError(f"too many slashes: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], None)
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
        if step > 1:
            star = False
    if start < low:
        raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _field(text: str, bounds: tuple[int, int], names: dict[str, int] | None = None
           ) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in (p for p in text.split(",") if p):
        got, part_star = _range(part, bounds, names)
        values |= got
        star = star or part_star
    return frozenset(values), star


DESCRIPTORS = {
    "@yearly": Schedule(frozenset({0}), frozenset({0}), frozenset({1}), frozenset({1}),
                        _ALL_DOW, dow_star=True),
    "@monthly": Schedule(frozenset({0}), frozenset({0}), frozenset({1}), _ALL_MONTHS,
                         _ALL_DOW, dow_star=True),
    "@weekly": Schedule(frozenset({0}), frozenset({0}), _ALL_DOM, _ALL_MONTHS, frozenset({0}),
                        dom_star=True),
    "@daily": Schedule(frozenset({0}), frozenset({0}), _ALL_DOM, _ALL_MONTHS, _ALL_DOW,
                       dom_star=True, dow_star=True),
    "@hourly": Schedule(frozenset({0}), _ALL_HOURS, _ALL_DOM, _ALL_MONTHS, _ALL_DOW,
                        dom_star=True, dow_star=True),
}
DESCRIPTORS["@annually"] = DESCRIPTORS["@yearly"]
DESCRIPTORS["@midnight"] = DESCRIPTORS["@daily"]


def parse_schedule(spec: str) -> CronSchedule:
    """robfig/cron's ``ParseStandard``; raises ``CronError`` with its message."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith("@"):
        if spec in DESCRIPTORS:
            return DESCRIPTORS[spec]
        if spec.startswith("@every "):
            return _every(spec)
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    minutes, _ = _field(fields[0], MINUTES)
    hours, _ = _field(fields[1], HOURS)
    dom, dom_star = _field(fields[2], DOM)
    months, _ = _field(fields[3], MONTHS, MONTH_NAMES)
    dow, dow_star = _field(fields[4], DOW, DOW_NAMES)
    return Schedule(minutes, hours, dom, months, dow, dom_star=dom_star, dow_star=dow_star)
