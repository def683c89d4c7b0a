"""Reading OOM kills from kernel log records, and podman's times, as the kubelet parses them."""

from __future__ import annotations

from datetime import UTC, datetime

from peapod.kubelet.oom import oom_killed_container
from peapod.kubelet.runtime import parse_go_time

CID = "4ce36985f4f4691a6e4664aaa19fb0a68f2700196ae8b3acc296b7d93fb0b816"


def test_an_oom_kill_record_names_the_podman_container():
    cgroupfs = (f"3,1234,3154238803,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
                f"cpuset=libpod-{CID},mems_allowed=0,oom_memcg=/libpod_parent/libpod-{CID},"
                f"task_memcg=/libpod_parent/libpod-{CID},task=sh,pid=32563,uid=0\n")
    assert oom_killed_container(cgroupfs) == CID
    systemd = (f"3,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
               f"mems_allowed=0,oom_memcg=/machine.slice/libpod-{CID}.scope,"
               f"task_memcg=/machine.slice/libpod-{CID}.scope,task=python3,pid=7,uid=0\n")
    assert oom_killed_container(systemd) == CID


def test_other_kernel_records_name_no_container():
    assert oom_killed_container("6,99,1,-;cni-podman0: port 1(veth1) entered disabled state") is None
    assert oom_killed_container(
        "3,5,6,-;Memory cgroup out of memory: Killed process 763 (sh) total-vm:13152kB") is None
    host = ("3,7,8,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
            "mems_allowed=0,global_oom,task_memcg=/user.slice,task=chrome,pid=9,uid=1000")
    assert oom_killed_container(host) is None


def test_podman_times_are_read_to_the_microsecond_and_go_zero_is_none():
    expected = datetime(2026, 11, 28, 2, 48, 15, 249926, tzinfo=UTC).timestamp()
    assert parse_go_time("2026-11-28T02:48:15.249926858Z") == expected
    assert parse_go_time("2026-11-28T02:48:15.249926858+00:00") == expected
    assert parse_go_time("2026-11-28T02:48:15Z") == datetime(2026, 11, 28, 2, 48, 15, tzinfo=UTC).timestamp()
    assert parse_go_time("0001-01-01T00:00:00Z") is None
    assert parse_go_time(None) is None
