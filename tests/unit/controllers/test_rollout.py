"""A Deployment's arithmetic: template hash, fenceposts and each rolling step, without a cluster."""

from __future__ import annotations

import re

import pytest

from peapod.api.apps import Deployment, ReplicaSet, ReplicaSetStatus
from peapod.controllers.rollout import (
    fenceposts,
    fnv32a,
    new_replicaset,
    new_rs_replicas,
    old_scale_downs,
    safe_encode,
    same_template,
    scaled_value,
    template_hash,
)


def deployment(replicas: int = 4, *, surge: object = "25%", unavailable: object = "25%",
               image: str = "nginx:1", strategy: str = "RollingUpdate") -> Deployment:
    spec_strategy: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        spec_strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return Deployment.model_validate({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": spec_strategy,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}})


def rs_of(deploy: Deployment, *, replicas: int, available: int, created: str,
          image: str | None = None) -> ReplicaSet:
    if image:
        deploy = deploy.model_copy(deep=True)
        deploy.spec.template.spec.containers[0].image = image
    rs = new_replicaset(deploy, hash_=template_hash(deploy.spec.template), revision=1,
                        replicas=replicas)
    rs.metadata.creation_timestamp = created
    rs.status = ReplicaSetStatus(replicas=replicas, ready_replicas=available,
                                 available_replicas=available)
    return rs


def test_fnv32a_and_safe_encoding_are_the_go_functions():
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C  # the FNV-1a test vector
    assert safe_encode("0123456789") == "456789bcdf"  # "0" is 48, 48 % 27 = 21: "4"


def test_the_hash_is_stable_kubernetes_shaped_and_moves_with_template_and_collisions():
    d = deployment()
    first = template_hash(d.spec.template)
    assert first == template_hash(deployment().spec.template)
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", first)
    assert template_hash(deployment(image="nginx:2").spec.template) != first
    assert template_hash(d.spec.template, 1) != first != template_hash(d.spec.template, 0)


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (2, 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 3, False, 3),
    ("0%", 5, True, 0), ("1%", 1, True, 1), ("1%", 1, False, 0)])
def test_percentages_round_as_kubernetes_does(value, total, up, expected):
    assert scaled_value(value, total, round_up=up) == expected


def test_fenceposts_never_leave_both_at_zero():
    assert fenceposts(deployment(10)) == (3, 2)
    assert fenceposts(deployment(1, surge="0%", unavailable="10%")) == (0, 1)
    assert fenceposts(deployment(3, strategy="Recreate")) == (0, 0)


def test_a_rolling_update_surges_then_drains_old_pods_while_enough_stay_available():
    d = deployment(4, surge=1, unavailable=1, image="nginx:2")
    old = rs_of(deployment(4), replicas=4, available=4, created="2026-01-01T00:00:00Z")
    new = rs_of(d, replicas=0, available=0, created="2026-01-02T00:00:00Z")
    assert not same_template(old, d) and same_template(new, d)
    assert new_rs_replicas(d, [old, new], new) == 1  # 4 + 1 surge - 4 running
    new = rs_of(d, replicas=1, available=0, created="2026-01-02T00:00:00Z")
    [step] = old_scale_downs(d, [old], new)
    assert step.to == 3  # 4 + 1 - (4 - 1) min available - 1 new unavailable = 1 to go
    new = rs_of(d, replicas=1, available=1, created="2026-01-02T00:00:00Z")
    old = rs_of(deployment(4), replicas=3, available=3, created="2026-01-01T00:00:00Z")
    assert new_rs_replicas(d, [old, new], new) == 2
    [step] = old_scale_downs(d, [old], new)
    assert step.to == 2  # available 4, min 3: one more may go


def test_unhealthy_old_pods_go_first_and_scaling_down_an_empty_history_does_nothing():
    d = deployment(4, surge=0, unavailable=1, image="nginx:2")
    stuck = rs_of(deployment(4), replicas=4, available=2, created="2026-01-01T00:00:00Z")
    new = rs_of(d, replicas=0, available=0, created="2026-01-02T00:00:00Z")
    [step] = old_scale_downs(d, [stuck], new)
    assert step.to == 3  # unavailable pods go first, within 4 - 3 min available = 1
    empty = rs_of(deployment(4), replicas=0, available=0, created="2026-01-01T00:00:00Z")
    assert old_scale_downs(d, [empty], new) == []


def test_the_new_replicaset_is_named_labelled_and_selected_by_the_hash():
    d = deployment()
    rs = new_replicaset(d, hash_="5d8f7b9c4", revision=3, replicas=2).to_wire()
    assert rs["metadata"]["name"] == "web-5d8f7b9c4"
    assert rs["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "3"}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web",
                                                      "pod-template-hash": "5d8f7b9c4"}}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "5d8f7b9c4"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
