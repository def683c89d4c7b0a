"""Crash-loop back-off with an injected clock: minutes of back-off tested instantly."""

from peapod.kubelet.backoff import Backoff


def test_first_restart_is_immediate_then_doubles_to_the_cap():
    b = Backoff(initial=10, cap=300)
    assert b.remaining("k", now=0) == 0
    b.started("k", now=0)
    assert b.remaining("k", now=5) == 5
    assert b.remaining("k", now=10) == 0
    delays = []
    t = 10.0
    for _ in range(7):
        b.started("k", now=t)
        delays.append(b.delay("k"))
        t += b.delay("k")
    assert delays == [20, 40, 80, 160, 300, 300, 300]


def test_a_container_that_stayed_up_long_is_forgiven():
    b = Backoff(initial=10, cap=300)
    b.started("k", now=0)
    b.started("k", now=10)
    assert b.delay("k") == 20
    b.started("k", now=10 + 601)
    assert b.delay("k") == 10


def test_forget_drops_every_container_of_a_pod():
    b = Backoff()
    b.started("uid1/a", now=0)
    b.started("uid1/b", now=0)
    b.started("uid2/a", now=0)
    b.forget("uid1/")
    assert b.remaining("uid1/a", now=1) == 0 and b.remaining("uid2/a", now=1) > 0
