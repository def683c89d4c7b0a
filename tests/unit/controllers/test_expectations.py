"""Expectations hold a ReplicaSet's next count until the informer showed its writes."""

from __future__ import annotations

from peapod.bus.clock import FakeClock
from peapod.controllers.expectations import TTL, Expectations


def test_creations_and_deletions_must_be_seen_before_the_key_counts_again():
    exp = Expectations(clock=FakeClock())
    assert exp.satisfied("rs")
    exp.expect("rs", adds=2, deletes={"u1"})
    exp.created("rs")
    assert not exp.satisfied("rs")
    exp.created("rs")
    assert not exp.satisfied("rs")
    exp.deleted("rs", "other")
    assert not exp.satisfied("rs")
    exp.deleted("rs", "u1")
    assert exp.satisfied("rs")


def test_an_expectation_never_met_expires_after_the_ttl():
    clock = FakeClock()
    exp = Expectations(clock=clock)
    exp.expect("rs", adds=1)
    clock.advance(TTL - 1)
    assert not exp.satisfied("rs")
    clock.advance(2)
    assert exp.satisfied("rs")
    exp.expect("rs", adds=1)
    exp.forget("rs")
    assert exp.satisfied("rs")
