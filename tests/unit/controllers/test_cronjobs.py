"""A CronJob's schedule arithmetic, its Jobs' names and its history, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from peapod.api.batch import SCHEDULED_TIMESTAMP, CronJob, Job
from peapod.api.cron import parse_schedule
from peapod.controllers.cronjobs import (
    job_for,
    jobs_beyond_history,
    last_successful_time,
    most_recent_schedule_time,
    requeue_in,
    rfc1123z,
)
from peapod.controllers.main import CONTROLLERS, enabled_controllers

CREATED = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)


def cronjob(schedule: str = "*/5 * * * *", last: str | None = None, **spec) -> CronJob:
    return CronJob.model_validate({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid",
                     "creationTimestamp": "2026-01-01T10:00:30Z"},
        "spec": {"schedule": schedule, **spec, "jobTemplate": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox"}]}}}}},
        "status": {"lastScheduleTime": last} if last else {}})


def recent(cj: CronJob, now: datetime, *, with_deadline: bool = True):
    return most_recent_schedule_time(cj, now, parse_schedule(cj.spec.schedule), UTC,
                                     with_deadline=with_deadline)


def test_nothing_is_due_before_the_first_time():
    got = recent(cronjob(), CREATED + timedelta(minutes=4))
    assert got.most_recent is None and got.missed == 0


def test_the_first_time_is_due_once_it_passed():
    got = recent(cronjob(), datetime(2026, 1, 1, 10, 5, 0, 200000, tzinfo=UTC))
    assert got.most_recent == datetime(2026, 1, 1, 10, 5, tzinfo=UTC) and got.missed == 0


def test_after_missed_times_only_the_most_recent_runs():
    got = recent(cronjob(last="2026-01-01T10:05:00Z"),
                 datetime(2026, 1, 1, 10, 27, tzinfo=UTC))
    assert got.most_recent == datetime(2026, 1, 1, 10, 25, tzinfo=UTC)
    assert got.missed == 4  # 10:10, 10:15, 10:20, 10:25


def test_every_runs_that_long_after_creation_then_after_the_last_run():
    assert recent(cronjob("@every 90s"), CREATED + timedelta(seconds=89)).most_recent is None
    first = recent(cronjob("@every 90s"), CREATED + timedelta(seconds=91)).most_recent
    assert first == CREATED + timedelta(seconds=90)
    later = recent(cronjob("@every 90s", last="2026-01-01T10:02:00Z"),
                   datetime(2026, 1, 1, 10, 7, 0, tzinfo=UTC))
    assert later.most_recent == datetime(2026, 1, 1, 10, 6, 30, tzinfo=UTC) and later.missed == 3


def test_more_than_a_hundred_missed_is_counted_as_many():
    got = recent(cronjob("* * * * *", last="2026-01-01T10:00:00Z"),
                 datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    assert got.missed == 120 and got.most_recent == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_starting_deadline_limits_how_far_back_it_looks():
    cj = cronjob(last="2026-01-01T10:05:00Z", startingDeadlineSeconds=60)
    assert recent(cj, datetime(2026, 1, 1, 10, 27, tzinfo=UTC)).most_recent is None
    got = recent(cj, datetime(2026, 1, 1, 10, 25, 40, tzinfo=UTC))
    assert got.most_recent == datetime(2026, 1, 1, 10, 25, tzinfo=UTC)


def test_requeue_at_the_next_time_plus_100ms():
    cj = cronjob(last="2026-01-01T10:05:00Z")
    schedule = parse_schedule(cj.spec.schedule)
    now = datetime(2026, 1, 1, 10, 6, tzinfo=UTC)
    assert abs(requeue_in(cj, now, schedule, UTC) - 240.1) < 1e-6
    # with missed times, from now on: the next time after now
    late = datetime(2026, 1, 1, 10, 27, tzinfo=UTC)
    assert abs(requeue_in(cj, late, schedule, UTC) - 180.1) < 1e-6


def test_job_name_owner_labels_and_scheduled_timestamp():
    scheduled = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    job = job_for(cronjob(), scheduled)
    assert job.metadata.name == f"tick-{int(scheduled.timestamp()) // 60}" == "tick-29454365"
    ref = job.metadata.owner_references[0]
    assert (ref.api_version, ref.kind, ref.name, ref.uid, ref.controller,
            ref.block_owner_deletion) == ("batch/v1", "CronJob", "tick", "cj-uid", True, True)
    assert job.metadata.labels == {"team": "a"}
    assert job.metadata.annotations == {"note": "x", SCHEDULED_TIMESTAMP: "2026-01-01T10:05:00Z"}
    in_zone = job_for(cronjob(timeZone="Asia/Kolkata"), scheduled)
    assert in_zone.metadata.annotations[SCHEDULED_TIMESTAMP] == "2026-01-01T15:35:00+05:30"


def test_time_zone_moves_the_schedule():
    cj = cronjob("0 9 * * *")
    got = most_recent_schedule_time(cj, datetime(2026, 1, 2, 8, 30, tzinfo=UTC),
                                    parse_schedule("0 9 * * *"), ZoneInfo("Europe/Berlin"),
                                    with_deadline=True)
    assert got.most_recent == datetime(2026, 1, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


def test_rfc1123z_as_go_prints_it():
    assert rfc1123z(datetime(2026, 1, 1, 10, 5, tzinfo=UTC)) == "Thu, 01 Jan 2026 10:05:00 +0000"


def finished(name: str, kind: str, start: str, done: str | None = None) -> Job:
    cond = {"type": kind, "status": "True"}
    return Job.model_validate({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "uid": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"startTime": start, "conditions": [cond],
                   **({"completionTime": done} if done else {})}})


def test_history_limits_delete_the_oldest_finished_jobs():
    jobs = [finished(f"ok-{i}", "Complete", f"2026-01-01T10:0{i}:00Z", f"2026-01-01T10:0{i}:30Z")
            for i in (3, 1, 4, 2)]
    jobs += [finished(f"bad-{i}", "Failed", f"2026-01-01T11:0{i}:00Z") for i in (2, 1)]
    victims = jobs_beyond_history(cronjob(successfulJobsHistoryLimit=2), jobs)
    assert [j.metadata.name for j in victims] == ["ok-1", "ok-2", "bad-1"]
    assert jobs_beyond_history(cronjob(successfulJobsHistoryLimit=0,
                                       failedJobsHistoryLimit=0), jobs).__len__() == 6
    assert last_successful_time(cronjob(), jobs) == "2026-01-01T10:04:30Z"


def test_controllers_flag_as_kube_controller_manager():
    assert enabled_controllers("*") == set(CONTROLLERS)
    assert enabled_controllers("*,-cronjob") == set(CONTROLLERS) - {"cronjob"}
    assert enabled_controllers("-cronjob,*") == set(CONTROLLERS) - {"cronjob"}
    assert enabled_controllers("job,cronjob") == {"job", "cronjob"}
    with pytest.raises(ValueError, match='"statefulset" is not in the list of known controllers'):
        enabled_controllers("*,statefulset")
