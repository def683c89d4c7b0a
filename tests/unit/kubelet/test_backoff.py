"""Back-off with an injected clock, as client-go's flowcontrol.Backoff: minutes tested instantly."""

from peapod.kubelet.backoff import Backoff, Entry, go_duration


def test_crash_loop_delay_is_counted_from_the_exit_and_doubles_to_the_cap():
    b = Backoff(initial=10, cap=300)
    # first exit at t=100: nothing recorded yet, the first restart is immediate
    assert not b.in_backoff_since("k", 100, now=100)
    b.next("k", 100, now=100)
    # the restarted container ran 8 s and exited at 108: the 10 s count from 108, not 100
    assert b.in_backoff_since("k", 108, now=117)
    assert not b.in_backoff_since("k", 108, now=118)
    delays, t = [], 118.0
    for _ in range(7):
        delays.append(b.next("k", t, now=t).delay)
        t += b.delay("k")
    assert delays == [20, 40, 80, 160, 300, 300, 300]


def test_a_container_that_stayed_up_long_is_forgiven():
    b = Backoff(initial=10, cap=300)
    b.next("k", 0, now=0)
    assert b.next("k", 10, now=10).delay == 20
    # exited more than twice the cap after the last restart: back to the start
    assert not b.in_backoff_since("k", 10 + 601, now=10 + 602)
    assert b.next("k", 10 + 601, now=10 + 602).delay == 10


def test_pull_back_off_is_counted_from_the_failure():
    b = Backoff(initial=10, cap=300)
    assert not b.in_backoff_since_update("pull", now=0)
    b.next("pull", 0, now=0)
    assert b.in_backoff_since_update("pull", now=9.9)
    assert not b.in_backoff_since_update("pull", now=10)
    b.next("pull", 10, now=10)
    assert b.in_backoff_since_update("pull", now=29.9) and b.delay("pull") == 20


def test_a_restored_entry_is_honoured_unless_a_newer_one_is_known():
    b = Backoff()
    b.restore("k", Entry(delay=40, last_update=1000))
    assert b.in_backoff_since("k", 1005, now=1044)
    assert not b.in_backoff_since("k", 1005, now=1045)
    b.next("k", 1005, now=1045)  # 80 s now
    b.restore("k", Entry(delay=40, last_update=1000))  # the old label again: ignored
    assert b.delay("k") == 80


def test_forget_drops_every_container_of_a_pod():
    b = Backoff()
    b.next("uid1/a", 0, now=0)
    b.next("uid1/b", 0, now=0)
    b.next("uid2/a", 0, now=0)
    b.forget("uid1/")
    assert b.entry("uid1/a") is None and b.entry("uid1/b") is None
    assert b.in_backoff_since("uid2/a", 0, now=1)


def test_delays_read_as_go_prints_them():
    assert [go_duration(d) for d in (10, 20, 80, 160, 300, 3725)] == [
        "10s", "20s", "1m20s", "2m40s", "5m0s", "1h2m5s"]
