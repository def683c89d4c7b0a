"""securityContext in manifests: what parses, and what is refused with the field's path."""

from __future__ import annotations

from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.errors import Invalid


def pod(pod_ctx: dict[str, Any] | None = None, ctx: dict[str, Any] | None = None) -> dict:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if ctx is not None:
        container["securityContext"] = ctx
    spec: dict[str, Any] = {"containers": [container]}
    if pod_ctx is not None:
        spec["securityContext"] = pod_ctx
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def refused(doc: dict) -> str:
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    return info.value.message


def test_the_documented_example_parses_and_round_trips() -> None:
    doc = pod({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
               "supplementalGroups": [4000], "fsGroupChangePolicy": "OnRootMismatch",
               "seccompProfile": {"type": "RuntimeDefault"},
               "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]},
              {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
               "runAsNonRoot": True, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
               "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"},
               "appArmorProfile": {"type": "Unconfined"}, "procMount": "Default"})
    parsed = parse_object(doc)
    assert isinstance(parsed, Pod)
    assert parsed.to_wire()["spec"] == doc["spec"] | {
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
        "containers": [doc["spec"]["containers"][0] | {
            "imagePullPolicy": "Always", "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"}]}


@pytest.mark.parametrize(("doc", "expected"), [
    (pod(ctx={"seLinuxOptions": {"level": "s0"}}),
     "spec.containers[0].securityContext.seLinuxOptions: Forbidden: peapod's nodes run without "
     "SELinux"),
    (pod({"windowsOptions": {"runAsUserName": "x"}}),
     "spec.securityContext.windowsOptions: Forbidden: peapod runs Linux containers only"),
    (pod({"appArmorProfile": {"type": "RuntimeDefault"}}),
     'spec.securityContext.appArmorProfile.type: Unsupported value: "RuntimeDefault"'),
    (pod(ctx={"capabilities": {"drop": ["ALL"], "add": ["CAP_NET_ADMIN", "NET_FOO"]}}),
     'spec.containers[0].securityContext.capabilities.add[1]: Unsupported value: "NET_FOO"'),
    (pod(ctx={"privileged": True, "allowPrivilegeEscalation": False}),
     "spec.containers[0].securityContext: Invalid value: cannot set `allowPrivilegeEscalation` "
     "to false and `privileged` to true"),
    (pod(ctx={"capabilities": {"add": ["SYS_ADMIN"]}, "allowPrivilegeEscalation": False}),
     "`capabilities.Add` CAP_SYS_ADMIN"),
    (pod({"seccompProfile": {"type": "Localhost"}}),
     "spec.securityContext.seccompProfile.localhostProfile: Required value"),
    (pod(ctx={"seccompProfile": {"type": "Localhost", "localhostProfile": "../../etc/x"}}),
     'localhostProfile: Invalid value: "../../etc/x": must be a relative path'),
    (pod(ctx={"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/x"}}),
     'localhostProfile: Invalid value: "/etc/x"'),
    (pod(ctx={"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "a.json"}}),
     "can only be set when seccomp type is Localhost"),
    (pod({"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
     'spec.securityContext.sysctls[0].name: Forbidden: sysctl "kernel.msgmax" is not one of '
     "Kubernetes' safe sysctls"),
    (pod({"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                      {"name": "kernel/shm_rmid_forced", "value": "0"}]}),
     'spec.securityContext.sysctls[1].name: Duplicate value: "kernel/shm_rmid_forced"'),
    (pod({"sysctls": [{"name": "Bad..name", "value": "1"}]}),
     'sysctls[0].name: Invalid value: "Bad..name"'),
    (pod({"supplementalGroups": [-1]}), "spec.securityContext.supplementalGroups[0]"),
    (pod({"runAsUser": -1}), "spec.securityContext.runAsUser"),
    (pod(ctx={"runAsGroup": 2147483648}), "spec.containers[0].securityContext.runAsGroup"),
    (pod(ctx={"procMount": "Unmasked"}),
     "spec.containers[0].securityContext.procMount: unsupported value 'Unmasked'"),
    (pod({"supplementalGroupsPolicy": "Strict"}), "spec.securityContext.supplementalGroupsPolicy"),
    (pod({"seLinuxChangePolicy": "Recursive"}),
     "spec.securityContext.seLinuxChangePolicy: unknown field"),
])
def test_what_a_node_cannot_honour_is_refused_by_name(doc: dict, expected: str) -> None:
    assert expected in refused(doc)
