"""Cron schedules read as robfig/cron v3 (Kubernetes' parser) reads them, and CronJob validation.

The expected times come from robfig's rules (its parser and ``Next``); the
cases marked "differs" are the ones where croniter or cronsim answer
otherwise, which is why peapod does not use them.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from peapod.api.cron import CronError, parse_schedule
from peapod.api.manifest import parse_object
from peapod.errors import Invalid

START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # a Thursday


def times(spec: str, n: int = 4, start: datetime = START, zone=UTC) -> list[str]:
    schedule, t, out = parse_schedule(spec), start, []
    for _ in range(n):
        t = schedule.next(t, zone)
        assert t is not None
        out.append(t.strftime("%m-%d %a %H:%M"))
    return out


@pytest.mark.parametrize(("spec", "expected"), [
    # both day fields restricted: either matches (Fridays or the 13th)
    ("0 0 13 * 5", ["01-02 Fri 00:00", "01-09 Fri 00:00", "01-13 Tue 00:00", "01-16 Fri 00:00"]),
    # */2 is no star for robfig: odd days OR Mondays (differs: cronsim ANDs them)
    ("0 0 */2 * 1", ["01-03 Sat 00:00", "01-05 Mon 00:00", "01-07 Wed 00:00", "01-09 Fri 00:00"]),
    # */1 is a star for robfig: Mondays only (differs: croniter ORs, every day)
    ("0 0 */1 * 1", ["01-05 Mon 00:00", "01-12 Mon 00:00", "01-19 Mon 00:00", "01-26 Mon 00:00"]),
    # 1-31 is no star: every day OR Monday, so every day
    ("0 0 1-31 * 1", ["01-02 Fri 00:00", "01-03 Sat 00:00", "01-04 Sun 00:00", "01-05 Mon 00:00"]),
    # ? is a star (differs: cronsim refuses it)
    ("0 0 ? * 1", ["01-05 Mon 00:00", "01-12 Mon 00:00", "01-19 Mon 00:00", "01-26 Mon 00:00"]),
    ("0 0 13 * *", ["01-13 Tue 00:00", "02-13 Fri 00:00", "03-13 Fri 00:00", "04-13 Mon 00:00"]),
    ("*/15 9-17 * * MON-fri", ["01-01 Thu 09:00", "01-01 Thu 09:15", "01-01 Thu 09:30",
                               "01-01 Thu 09:45"]),
    ("5/20 * * * *", ["01-01 Thu 00:05", "01-01 Thu 00:25", "01-01 Thu 00:45",
                      "01-01 Thu 01:05"]),
    ("0 12 1 jan,Jul *", ["01-01 Thu 12:00", "07-01 Wed 12:00", "01-01 Fri 12:00",
                          "07-01 Thu 12:00"]),
    ("0 0 2-10/4 * *", ["01-02 Fri 00:00", "01-06 Tue 00:00", "01-10 Sat 00:00",
                        "02-02 Mon 00:00"]),
    ("@hourly", ["01-01 Thu 01:00", "01-01 Thu 02:00", "01-01 Thu 03:00", "01-01 Thu 04:00"]),
    ("@daily", ["01-02 Fri 00:00", "01-03 Sat 00:00", "01-04 Sun 00:00", "01-05 Mon 00:00"]),
    ("@midnight", ["01-02 Fri 00:00", "01-03 Sat 00:00", "01-04 Sun 00:00", "01-05 Mon 00:00"]),
    ("@weekly", ["01-04 Sun 00:00", "01-11 Sun 00:00", "01-18 Sun 00:00", "01-25 Sun 00:00"]),
    ("@monthly", ["02-01 Sun 00:00", "03-01 Sun 00:00", "04-01 Wed 00:00", "05-01 Fri 00:00"]),
    ("@yearly", ["01-01 Fri 00:00", "01-01 Sat 00:00", "01-01 Mon 00:00", "01-01 Tue 00:00"]),
    ("@annually", ["01-01 Fri 00:00", "01-01 Sat 00:00", "01-01 Mon 00:00", "01-01 Tue 00:00"]),
])
def test_next_times_follow_robfig(spec, expected):
    assert times(spec) == expected


def test_a_day_that_never_comes_gives_none():
    assert parse_schedule("0 0 31 2 *").next(START, UTC) is None


def test_time_zones_and_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    assert times("30 2 * * *", 1, zone=berlin) == ["01-01 Thu 02:30"]  # wall clock of the zone
    # 2026-03-29 has no 02:30 in Berlin: that day does not run
    assert times("30 2 * * *", 2, datetime(2026, 3, 28, 12, tzinfo=berlin), berlin) == [
        "03-30 Mon 02:30", "03-31 Tue 02:30"]
    # 2026-10-25 repeats 02:00-03:00: minutes are elapsed time, so both 02:30 run
    got = parse_schedule("30 * * * *").next(datetime(2026, 10, 25, 2, 0, tzinfo=berlin), berlin)
    again = parse_schedule("30 * * * *").next(got, berlin)
    assert (got.isoformat(), again.isoformat()) == ("2026-10-25T02:30:00+02:00",
                                                    "2026-10-25T02:30:00+01:00")


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]"),
    ("0 0 * * 7", "end of range (7) above maximum (6): 7"),  # differs: croniter takes 7
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
    ("L * * * *", 'failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax'),
    ("0 0 * * 5#2", 'failed to parse int from 5#2: strconv.Atoi: parsing "5#2": invalid syntax'),
    ("@reboot", "unrecognized descriptor: @reboot"),
    ("@every", "unrecognized descriptor: @every"),
    ("@every ", 'failed to parse duration @every : time: invalid duration ""'),
    ("@every 10", 'failed to parse duration @every 10: time: missing unit in duration "10"'),
    ("@every 1d", 'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"'),
    ("@every .h", 'failed to parse duration @every .h: time: invalid duration ".h"'),
    ("@every 1h 5m", 'failed to parse duration @every 1h 5m: time: unknown unit "h " in '
                     'duration "1h 5m"'),
])
def test_refusals_in_robfigs_words(spec, message):
    with pytest.raises(CronError) as exc:
        parse_schedule(spec)
    assert str(exc.value) == message


CRONJOB = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
           "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}


def refusal(change) -> str:
    doc = copy.deepcopy(CRONJOB)
    change(doc)
    with pytest.raises(Invalid) as exc:
        parse_object(doc)
    return str(exc.value)


def test_defaults_as_kubernetes():
    spec = parse_object(copy.deepcopy(CRONJOB)).to_wire()["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)


def test_validation_in_kubernetes_words():
    cases = [
        (lambda d: d["spec"].update(schedule="TZ=UTC 0 * * * *"),
         'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
         "schedule, use timeZone field instead"),
        (lambda d: d["spec"].update(schedule="CRON_TZ=Europe/Berlin 0 * * * *"),
         "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        (lambda d: d["spec"].update(schedule="0 0 * * 7"),
         'spec.schedule: Invalid value: "0 0 * * 7": end of range (7) above maximum (6): 7'),
        (lambda d: d["spec"].update(schedule=""), "spec.schedule: Required value"),
        (lambda d: d["spec"].update(timeZone="Mars/Olympus"),
         'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'),
        (lambda d: d["spec"].update(timeZone="../etc"),
         'spec.timeZone: Invalid value: "../etc": unknown time zone ../etc'),
        (lambda d: d["spec"].update(timeZone="Local"),
         "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"),
        (lambda d: d["spec"].update(timeZone=""),
         'spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string'),
        (lambda d: d["spec"].update(concurrencyPolicy="Sometimes"),
         'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", '
         '"Forbid", "Replace"'),
        (lambda d: d["spec"].update(startingDeadlineSeconds=-1),
         "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"),
        (lambda d: d["spec"].update(successfulJobsHistoryLimit=-2),
         "spec.successfulJobsHistoryLimit: Invalid value: -2: must be greater than or equal to 0"),
        (lambda d: d["spec"].update(failedJobsHistoryLimit=-1),
         "spec.failedJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0"),
        (lambda d: d["metadata"].update(name="x" * 53), "must be no more than 52 characters"),
        (lambda d: d["spec"].update(bogus=1), "spec.bogus: unknown field"),
        (lambda d: d["spec"]["jobTemplate"]["spec"].update(suspend=True),
         "spec.jobTemplate.spec.suspend: unknown field"),
        (lambda d: d["spec"]["jobTemplate"]["spec"].update(
            selector={"matchLabels": {"a": "b"}}),
         "spec.jobTemplate.spec.selector: Invalid value: 'a=b': `selector` not auto-generated"),
        (lambda d: d["spec"]["jobTemplate"].update(metadata={"name": "x"}),
         "spec.jobTemplate.metadata.name: Forbidden: set by the controller"),
        (lambda d: d["spec"]["jobTemplate"]["spec"]["template"]["spec"].update(
            restartPolicy="Always"),
         'spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: '
         '"OnFailure", "Never" (got "Always")'),
    ]
    for change, message in cases:
        assert message in refusal(change)


def test_a_known_time_zone_is_accepted():
    doc = copy.deepcopy(CRONJOB)
    doc["spec"]["timeZone"] = "America/New_York"
    assert parse_object(doc).spec.time_zone == "America/New_York"


@pytest.mark.parametrize(("spec", "seconds"), [
    ("@every 1h30m", 5400), ("@every 90s", 90), ("@every 1.5h", 5400), ("@every 1500ms", 1),
    ("@every 10ms", 1), ("@every -5m", 1), ("@every 0", 1), ("@every 2h0m0.9s", 7200),
])
def test_every_is_robfigs_constant_delay_in_whole_seconds(spec, seconds):
    schedule = parse_schedule(spec)
    after = datetime(2026, 3, 29, 0, 59, 59, 700000, tzinfo=UTC)
    assert schedule.next(after, UTC) == after.replace(microsecond=0) + timedelta(seconds=seconds)


def test_time_zones_do_not_need_the_hosts_tz_database():
    """A minimal node image may have no /usr/share/zoneinfo: the tzdata package stands in
    (as kube-controller-manager embeds Go's), so timeZone still resolves."""
    import zoneinfo

    from peapod.api.batch import load_time_zone
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        berlin = load_time_zone("Europe/Berlin")
        assert datetime(2026, 7, 1, tzinfo=berlin).utcoffset() == timedelta(hours=2)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
