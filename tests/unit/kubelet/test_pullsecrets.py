"""Which imagePullSecrets entry applies to which image, and the header podman receives."""

from __future__ import annotations

import base64
import json

import pytest

from peapod.api import Secret
from peapod.kubelet.pullsecrets import RegistryAuth, entries, matching
from peapod.kubelet.runtime import normalize_image


def secret(kind: str, key: str, config: dict) -> Secret:
    return Secret.model_validate({"metadata": {"name": "regcred"}, "type": kind, "data": {
        key: base64.b64encode(json.dumps(config).encode()).decode()}})


def test_dockerconfigjson_and_dockercfg_entries_with_auth_or_username_and_password():
    auth = base64.b64encode(b"alice:pa:ss").decode()
    modern = secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", {"auths": {
        "reg.example.com": {"auth": auth}, "other.io": {"username": "bob", "password": "x"},
        "empty.io": {}}})
    legacy = secret("kubernetes.io/dockercfg", ".dockercfg", {"old.io": {"auth": auth}})
    assert [(a.key, a.username, a.password) for a in entries(modern)] == [
        ("reg.example.com", "alice", "pa:ss"), ("other.io", "bob", "x")]
    assert [(a.key, a.username) for a in entries(legacy)] == [("old.io", "alice")]
    opaque = Secret.model_validate({"metadata": {"name": "x"}, "data": {"a": "Yg=="}})
    assert entries(opaque) == []
    assert "pa:ss" not in repr(entries(modern)) and "alice" not in repr(entries(modern))


@pytest.mark.parametrize(("image", "keys"), [
    ("busybox", ["https://index.docker.io/v1/", "docker.io"]),
    ("reg.example.com:5000/team/app:1", ["reg.example.com:5000/team", "reg.example.com:5000"]),
    ("reg.example.com:5000/teamx/app@sha256:ab", ["reg.example.com:5000"]),
    ("a.example.com/app:1", ["*.example.com"]),
    ("a.b.example.com/app:1", []),
    ("reg.example.com/app:1", ["*.example.com"]),
    ("reg.example.com:6000/team/app:1", []),  # ports must be equal
])
def test_keys_match_as_kubernetes_keyring_matches_them(image, keys):
    auths = [RegistryAuth(key=k, username="u", password="p") for k in (
        "https://index.docker.io/v1/", "docker.io", "reg.example.com:5000",
        "reg.example.com:5000/team", "*.example.com")]
    assert [a.key for a in matching(normalize_image(image), auths)] == keys


def test_the_header_is_dockers_auth_config_in_base64url():
    header = RegistryAuth(key="r", username="alice", password="s3cret?>").header("r:5000")
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "serveraddress": "r:5000", "username": "alice", "password": "s3cret?>"}
    token = RegistryAuth(key="r", identity_token="tok").header("r")
    assert json.loads(base64.urlsafe_b64decode(token)) == {"serveraddress": "r",
                                                           "identitytoken": "tok"}
