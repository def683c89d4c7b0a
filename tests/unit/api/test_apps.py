"""apps/v1 manifests and owner references are judged with Kubernetes' words."""

from __future__ import annotations

import pytest

from peapod.api import parse_object
from peapod.api.apps import LabelSelector
from peapod.errors import Invalid


def rs(**spec) -> dict:
    base = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {**base, **spec}}


def refusal(doc: dict) -> str:
    with pytest.raises(Invalid) as caught:
        parse_object(doc)
    return caught.value.message


def test_a_replicaset_needs_apps_v1_and_a_selector():
    assert parse_object(rs()).kind == "ReplicaSet"
    assert "expected 'apps/v1'" in refusal({**rs(), "apiVersion": "v1"})
    assert refusal(rs(selector={})) == (
        'ReplicaSet.apps "web" is invalid: spec.selector: Required value')
    assert "spec.selector: Required value" in refusal(rs(selector=None))


def test_set_based_selectors_match_like_kubernetes():
    sel = LabelSelector.model_validate({"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["a", "b"]},
        {"key": "legacy", "operator": "DoesNotExist"}]})
    assert sel.matches({"env": "a"}) and not sel.matches({"env": "c"})
    assert not sel.matches({"env": "a", "legacy": "1"})
    assert sel.to_query() == "env in (a,b),!legacy"
    assert "must be specified when `operator` is 'In'" in refusal(rs(selector={
        "matchExpressions": [{"key": "app", "operator": "In"}]}))


def test_template_rules():
    doc = rs()
    doc["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    doc["spec"]["template"]["metadata"]["name"] = "fixed"
    message = refusal(doc)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "OnFailure"' in message
    assert "spec.template.metadata.name: Forbidden" in message
    doc = rs()
    doc["spec"]["template"]["spec"]["containers"][0]["name"] = "Bad_Name"
    assert "spec.template.spec.containers[0].name" in refusal(doc)
    assert "replicas: Invalid value: -1: must be greater than or equal to 0" in refusal(rs(replicas=-1))


def test_owner_references_and_finalizers_are_acted_on_or_refused_by_name():
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1",
             "controller": True}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "ownerReferences": [
        owner, {**owner, "uid": "2"}]}, "spec": {"containers": [{"name": "c", "image": "b"}]}}
    assert "only one reference can have Controller set to true" in refusal(pod)
    pod["metadata"]["ownerReferences"] = [{**owner, "kind": "ConfigMapish"}]
    assert 'ownerReferences[0].kind: Unsupported value: \'ConfigMapish\'' in refusal(pod)
    pod["metadata"]["ownerReferences"] = [{**owner, "apiVersion": "v1"}]
    assert "ownerReferences[0].apiVersion: Invalid value: 'v1': kind ReplicaSet is 'apps/v1'" \
        in refusal(pod)
    doc = rs()
    doc["metadata"]["finalizers"] = ["orphan", "example.com/hold"]
    assert refusal(doc) == ('ReplicaSet.apps "web" is invalid: metadata.finalizers[1]: Unsupported '
                            "value: 'example.com/hold': supported values: \"foregroundDeletion\", "
                            "\"orphan\" (peapod runs no other finalizer, so the object could "
                            "never be deleted)")
