"""describe of ConfigMaps, Secrets and the env/volume sources of a pod, as kubectl prints them."""

from __future__ import annotations

from datetime import UTC, datetime

from peapod.api import ConfigMap, Pod, Secret
from peapod.cli.describe import describe_config, describe_pod

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_a_secret_shows_byte_counts_never_values():
    secret = Secret.model_validate({"metadata": {"name": "db", "namespace": "default"},
                                    "type": "Opaque",
                                    "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}})
    assert describe_config(secret, now=NOW).splitlines() == [
        "Name:         db", "Namespace:    default", "Labels:       <none>",
        "Annotations:  <none>", "", "Type:  Opaque", "", "Data", "====",
        "password:  7 bytes", "user:      5 bytes"]


def test_a_configmap_shows_its_data_and_the_size_of_its_binary_data():
    cm = ConfigMap.model_validate({"metadata": {"name": "game", "namespace": "default"},
                                   "data": {"lives": "3", "props": "a=1\nb=2"},
                                   "binaryData": {"blob": "AAEC"}})
    assert describe_config(cm, now=NOW).splitlines() == [
        "Name:         game", "Namespace:    default", "Labels:       <none>",
        "Annotations:  <none>", "", "Data", "====", "lives:", "----", "3", "props:", "----",
        "a=1", "b=2", "", "BinaryData", "====", "blob: 3 bytes", "", "Events:  <none>"]


def test_env_sources_in_describe_pod():
    pod = Pod.model_validate({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"limits": {"memory": "64Mi"}},
                        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "P_"}],
                        "env": [
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k",
                                                            "optional": True}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
        ]}]}})
    # columns align across the container's block (as kubectl's tabwriter does): compare words
    lines = [" ".join(line.split()) for line in describe_pod(pod, [], now=NOW).splitlines()]
    at = lines.index("Environment Variables from:")
    assert lines[at:at + 9] == [
        "Environment Variables from:", "cfg ConfigMap with prefix 'P_' Optional: false",
        "Environment:",
        "S: <set to the key 'k' in secret 's'> Optional: false",
        "C: <set to the key 'k' of config map 'cfg'> Optional: true",
        "NAME: p (v1:metadata.name)", "NODE: (v1:spec.nodeName)",
        "CPU: node allocatable (limits.cpu)", "MEM: 67108864 (limits.memory)"]
