"""The securityContext → podman SpecGenerator mapping (pure; podman itself is in
tests/integration/cluster/test_security_context.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.kubelet.security import (
    Refusal,
    container_fields,
    prepare_empty_dir,
    sandbox_fields,
)


def make(pod_ctx: dict[str, Any] | None = None, ctx: dict[str, Any] | None = None) -> Pod:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if ctx is not None:
        container["securityContext"] = ctx
    spec: dict[str, Any] = {"containers": [container], "securityContext": pod_ctx or {}}
    pod = parse_object({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": spec})
    assert isinstance(pod, Pod)
    return pod


def fields(pod: Pod, image_user: str = "", seccomp_dir: Path = Path("/nonexistent")) -> dict:
    return container_fields(pod, pod.spec.containers[0], seccomp_dir=seccomp_dir,
                            image_user=lambda: image_user)


def test_nothing_set_adds_nothing() -> None:
    assert fields(make()) == {}
    assert sandbox_fields(make()) == {}


def test_container_overrides_pod_and_groups_merge() -> None:
    pod = make({"runAsUser": 1, "runAsGroup": 2, "fsGroup": 3, "supplementalGroups": [4, 3]},
               {"runAsUser": 5})
    assert fields(pod) == {"user": "5:2", "groups": ["4", "3"]}


def test_a_group_alone_keeps_the_images_user() -> None:
    assert fields(make({"runAsGroup": 7}), image_user="app:app")["user"] == "app:7"
    assert fields(make({"runAsGroup": 7}), image_user="")["user"] == "0:7"


def test_capabilities_privileged_and_the_rest() -> None:
    pod = make(ctx={"capabilities": {"add": ["NET_ADMIN", "CAP_SYS_TIME"], "drop": ["ALL"]},
                    "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                    "appArmorProfile": {"type": "Unconfined"},
                    "seccompProfile": {"type": "Unconfined"}})
    assert fields(pod) == {"cap_add": ["CAP_NET_ADMIN", "CAP_SYS_TIME"], "cap_drop": ["ALL"],
                           "read_only_filesystem": True,
                           "no_new_privileges": True, "apparmor_profile": "unconfined",
                           "seccomp_profile_path": "unconfined"}
    assert fields(make(ctx={"privileged": True})) == {"privileged": True}
    # the pod's profile does not confine a privileged container (Kubernetes: unconfined)
    assert fields(make({"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}},
                       {"privileged": True})) == {"privileged": True}


def test_seccomp_profiles(tmp_path: Path) -> None:
    assert "seccomp_profile_path" not in fields(make({"seccompProfile": {"type": "RuntimeDefault"}}))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.json").write_text("{}")
    local = make({"seccompProfile": {"type": "Localhost", "localhostProfile": "p/a.json"}})
    assert fields(local, seccomp_dir=tmp_path)["seccomp_profile_path"] == str(tmp_path / "p/a.json")
    missing = make(ctx={"seccompProfile": {"type": "Localhost", "localhostProfile": "p/b.json"}})
    with pytest.raises(Refusal) as info:
        fields(missing, seccomp_dir=tmp_path)
    assert info.value.reason == "CreateContainerError"
    assert str(tmp_path / "p/b.json") in info.value.message


@pytest.mark.parametrize(("pod_ctx", "ctx", "image_user", "expected"), [
    ({"runAsNonRoot": True}, None, "", "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True}, None, "0:0", "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True}, None, "nobody",
     "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is "
     "non-root"),
    (None, {"runAsNonRoot": True, "runAsUser": 0}, "1000",
     "container's runAsUser breaks non-root policy"),
    ({"runAsUser": 0}, {"runAsNonRoot": True}, "1000",
     "container's runAsUser breaks non-root policy"),
])
def test_run_as_non_root_refusals(pod_ctx, ctx, image_user, expected) -> None:
    with pytest.raises(Refusal) as info:
        fields(make(pod_ctx, ctx), image_user=image_user)
    assert info.value.reason == "CreateContainerConfigError"
    assert info.value.message == f'{expected} (pod: "p_ns(u-1)", container: c)'


@pytest.mark.parametrize(("pod_ctx", "ctx", "image_user"), [
    ({"runAsNonRoot": True}, None, "1000"),
    ({"runAsNonRoot": True}, None, "1000:0"),
    ({"runAsNonRoot": True, "runAsUser": 5}, None, ""),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, ""),  # the container's word wins
])
def test_run_as_non_root_allows(pod_ctx, ctx, image_user) -> None:
    fields(make(pod_ctx, ctx), image_user=image_user)


def test_sysctls_go_to_the_sandbox() -> None:
    pod = make({"sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "1"}]})
    assert sandbox_fields(pod) == {"sysctl": {"net.ipv4.tcp_syncookies": "1"}}


def test_empty_dirs_are_world_writable_and_owned_by_the_fs_group(tmp_path: Path) -> None:
    prepare_empty_dir(tmp_path / "a", make())
    assert (tmp_path / "a").stat().st_mode & 0o7777 == 0o777
    prepare_empty_dir(tmp_path / "b", make({"fsGroup": 2345}))
    info = (tmp_path / "b").stat()
    assert (info.st_gid, info.st_mode & 0o7777) == (2345, 0o2777)
