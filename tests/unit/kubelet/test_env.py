"""A container's environment as Kubernetes' makeEnvironmentVariables builds it (pure)."""

from __future__ import annotations

import pytest

from peapod.api import ConfigMap, Pod, Secret
from peapod.api.downward import Where
from peapod.kubelet.env import ConfigFailure, resolve


def pod(container: dict, **meta: object) -> Pod:
    return Pod.model_validate({"metadata": {"name": "web", "namespace": "team", "uid": "u-1",
                                            **meta},
                               "spec": {"nodeName": "n1", "containers": [
                                   {"name": "c", "image": "busybox", **container}]}})


OBJECTS = {
    ("ConfigMap", "cfg"): ConfigMap.model_validate({"metadata": {"name": "cfg"},
                                                    "data": {"a": "1", "b": "2"},
                                                    "binaryData": {"bin": "AAE="}}),
    ("Secret", "sec"): Secret.model_validate({"metadata": {"name": "sec"},
                                              "data": {"a": "c2VjcmV0"}}),
}


def lookup(kind: str, name: str):
    return OBJECTS.get((kind, name))


def env_of(container: dict, **meta: object) -> dict[str, str]:
    p = pod(container, **meta)
    return resolve(p, p.spec.containers[0], lookup, Where(pod_ip="10.0.0.5")).env


def test_env_overrides_env_from_and_later_sources_override_earlier():
    assert env_of({"envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}},
                               {"configMapRef": {"name": "cfg"}, "prefix": "P_"}],
                   "env": [{"name": "b", "value": "env"}]}) == {
        "a": "secret", "b": "env", "P_a": "1", "P_b": "2"}  # binaryData never becomes env


def test_missing_objects_and_keys_in_kubernetes_words_unless_optional():
    with pytest.raises(ConfigFailure, match=r'^CreateContainerConfigError: configmap "gone" '
                                            r"not found$"):
        env_of({"envFrom": [{"configMapRef": {"name": "gone"}}]})
    with pytest.raises(ConfigFailure) as failure:
        env_of({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "z"}}}]})
    assert failure.value.message == "couldn't find key z in Secret team/sec"
    assert env_of({"envFrom": [{"secretRef": {"name": "gone", "optional": True}}], "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "z",
                                                        "optional": True}}}]}) == {}


def test_downward_fields_and_resources():
    env = env_of({"resources": {"limits": {"cpu": "1500m", "memory": "100Mi"},
                                "requests": {"cpu": "250m"}}, "env": [
        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['a']"}}},
        {"name": "ALL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                           "divisor": "1m"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory",
                                                           "divisor": "1Mi"}}},
    ]}, labels={"a": "x", "b": 'q"uote'})
    assert env == {"N": "team", "IP": "10.0.0.5", "L": "x", "ALL": 'a="x"\nb="q\\"uote"',
                   "SA": "default", "CPU": "2", "REQ": "250", "MEM": "100"}


def test_command_and_args_are_expanded_against_the_whole_environment():
    p = pod({"env": [{"name": "A", "value": "$(B)"}, {"name": "B", "value": "b"}],
             "command": ["echo", "$(A)", "$(B)"], "args": ["$$(B)", "$(C)"]})
    resolved = resolve(p, p.spec.containers[0], lookup, Where())
    assert resolved.env == {"A": "$(B)", "B": "b"}  # A was defined before B
    assert (resolved.command, resolved.args) == (["echo", "$(B)", "b"], ["$(B)", "$(C)"])
