"""The Pod Security Standards' checks and Kubernetes' wording, level by level (pure; the
apiserver's use of them is in tests/integration/cluster/test_pod_security.py)."""

from __future__ import annotations

from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.api.podsecurity import (
    ENFORCE,
    ENFORCE_VERSION,
    Policy,
    forbidden_reason,
    label_problems,
    parse_policy,
    policy_for,
    violations,
)


def make(containers: list[dict[str, Any]] | None = None, **spec: Any) -> Pod:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": containers or [{"name": "c", "image": "busybox"}], **spec}}
    pod = parse_object(doc)
    assert isinstance(pod, Pod)
    return pod


def c(name: str, **security: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **({"securityContext": security} if security else {})}


TIGHT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_privileged_allows_everything() -> None:
    pod = make([c("a", privileged=True)], hostNetwork=True)
    assert violations(pod, "privileged") == []
    assert forbidden_reason(pod, Policy("privileged")) is None


@pytest.mark.parametrize(("pod", "expected"), [
    (make([c("a", privileged=True), c("b", privileged=True)]),
     [("privileged", 'containers "a", "b" must not set securityContext.privileged=true')]),
    (make([c("a", capabilities={"add": ["NET_ADMIN", "CHOWN"]}),
           c("b", capabilities={"add": ["CAP_SYS_TIME", "NET_ADMIN"]})]),
     [("non-default capabilities", 'containers "a", "b" must not include "NET_ADMIN", '
       '"SYS_TIME" in securityContext.capabilities.add')]),
    (make(hostIPC=True), [("host namespaces", "hostIPC=true")]),
    (make([{"name": "a", "image": "b", "ports": [{"containerPort": 1, "hostPort": 81},
                                                  {"containerPort": 2, "hostPort": 82}]}]),
     [("hostPort", 'container "a" uses hostPorts 81, 82')]),
    (make(volumes=[{"name": "x", "hostPath": {"path": "/x"}},
                   {"name": "y", "hostPath": {"path": "/y"}}]),
     [("hostPath volumes", 'volumes "x", "y"')]),
    (make([c("a", seccompProfile={"type": "Unconfined"})],
          securityContext={"seccompProfile": {"type": "Unconfined"}}),
     [("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"; '
       'container "a" must not set securityContext.seccompProfile.type to "Unconfined"')]),
    (make([c("a", appArmorProfile={"type": "Unconfined"})]),
     [("forbidden AppArmor profile", 'container "a" must not set '
       'securityContext.appArmorProfile.type to "Unconfined"')]),
])
def test_baseline(pod: Pod, expected: list[tuple[str, str]]) -> None:
    assert violations(pod, "baseline") == expected


def test_restricted_passes_a_hardened_pod_and_keeps_baselines_checks() -> None:
    good = make([c("a", **{**TIGHT, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}),
                 c("b", **TIGHT, seccompProfile={"type": "Localhost", "localhostProfile": "x"})],
                securityContext={"runAsNonRoot": True, "runAsUser": 1000,
                                 "seccompProfile": {"type": "RuntimeDefault"}},
                volumes=[{"name": "e", "emptyDir": {}}])
    assert violations(good, "restricted") == []
    worse = make([c("a", allowPrivilegeEscalation=False, privileged=False, runAsUser=0,
                    runAsNonRoot=False, capabilities={"drop": ["ALL"], "add": ["CHOWN"]})],
                 securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}},
                 volumes=[{"name": "h", "hostPath": {"path": "/"}}], hostPID=True)
    assert violations(worse, "restricted") == [
        ("unrestricted capabilities", 'container "a" must not include "CHOWN" in '
         "securityContext.capabilities.add"),
        ("host namespaces", "hostPID=true"),
        ("hostPath volumes", 'volume "h"'),
        ("restricted volume types", 'volume "h" uses restricted volume type "hostPath"'),
        ("runAsNonRoot != true", 'container "a" must not set securityContext.runAsNonRoot=false'),
        ("runAsUser=0", 'container "a" must not set runAsUser=0'),
        ("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"'),
    ]


def test_pod_level_run_as_non_root_false_is_named() -> None:
    pod = make([c("a", **TIGHT)], securityContext={
        "runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}})
    assert violations(pod, "restricted") == [
        ("runAsNonRoot != true", "pod must not set securityContext.runAsNonRoot=false; "
         'pod or container "a" must set securityContext.runAsNonRoot=true')]


def test_policies_from_labels_flags_and_defaults() -> None:
    default = Policy("baseline")
    assert policy_for(None, default) == default
    assert policy_for({ENFORCE: "restricted"}, default) == Policy("restricted", "latest")
    assert policy_for({ENFORCE_VERSION: "v1.29"}, default) == Policy("baseline", "v1.29")
    assert policy_for({ENFORCE: "bogus"}, default) == Policy("restricted")  # fails closed
    assert parse_policy("privileged") == Policy("privileged")
    assert str(parse_policy("restricted:v1.31")) == "restricted:v1.31"
    with pytest.raises(ValueError, match="must be one of privileged, baseline, restricted"):
        parse_policy("open")
    assert label_problems({ENFORCE: "baseline", ENFORCE_VERSION: "latest", "x": "y"}) == []
    assert len(label_problems({"pod-security.kubernetes.io/audit": "restricted"})) == 1


def test_init_containers_are_checked_too() -> None:
    pod = make(initContainers=[c("setup", privileged=True)])
    assert violations(pod, "baseline") == [
        ("privileged", 'container "setup" must not set securityContext.privileged=true')]


# The Pod examples of Kubernetes' "Configure a Security Context" page, as a user feeds them
DOCS_EXAMPLES = {
    "security-context": {"securityContext": {"runAsUser": 1000, "fsGroup": 2000},
                         "volumes": [{"name": "sec-ctx-vol", "emptyDir": {}}],
                         "containers": [{"name": "sec-ctx-demo", "image": "node-hello:1.0",
                                         "volumeMounts": [{"name": "sec-ctx-vol",
                                                           "mountPath": "/data/demo"}],
                                         "securityContext": {"allowPrivilegeEscalation": False}}]},
    "security-context-2": {"securityContext": {"runAsUser": 1000},
                           "containers": [{"name": "sec-ctx-demo-2", "image": "hello-app:2.0",
                                           "securityContext": {"runAsUser": 2000,
                                                               "allowPrivilegeEscalation": False}}]},
    "security-context-4": {"containers": [{"name": "sec-ctx-4", "image": "node-hello:1.0",
                                           "securityContext": {"capabilities": {
                                               "add": ["NET_ADMIN", "SYS_TIME"]}}}]},
    "security-context-5": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000,
                                               "supplementalGroups": [4000]},
                           "containers": [{"name": "sec-ctx-demo", "image": "agnhost:2.45",
                                           "command": ["sh", "-c", "sleep 1h"],
                                           "securityContext": {"allowPrivilegeEscalation": False}}]},
}


@pytest.mark.parametrize("name", sorted(DOCS_EXAMPLES))
def test_the_security_context_docs_examples(name: str) -> None:
    pod = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                        "spec": DOCS_EXAMPLES[name]})
    assert isinstance(pod, Pod)
    reason = forbidden_reason(pod, Policy("baseline"))
    if name == "security-context-4":  # accepted in a namespace labelled privileged
        assert reason == (
            'pods "security-context-4" is forbidden: violates PodSecurity "baseline:latest": '
            'non-default capabilities (container "sec-ctx-4" must not include "NET_ADMIN", '
            '"SYS_TIME" in securityContext.capabilities.add)')
        assert forbidden_reason(pod, Policy("privileged")) is None
    else:
        assert reason is None
