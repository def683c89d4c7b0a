"""Pod Security Admission: Kubernetes' Pod Security Standards, enforced per namespace.

A namespace chooses its level with the label
``pod-security.kubernetes.io/enforce: privileged|baseline|restricted`` (and
``…/enforce-version: latest|v1.N``); a namespace without the label gets the
cluster's default, which the apiserver takes from ``--pod-security``
(``baseline`` unless the operator says otherwise). A pod that breaks its
level is refused with Kubernetes' words::

    pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces
    (hostNetwork=true), privileged (container "c" must not set securityContext.privileged=true)

Unsafe sysctls, SELinux options, Windows host processes and ``procMount:
Unmasked``, which the baseline also forbids, never get this far: peapod
refuses them for every pod. The checks are those of Kubernetes' ``latest`` (checks sorted by their id, as
Kubernetes lists them); a version label is accepted and shown in the message,
but the checks are always ``latest``'s. Only ``enforce`` is implemented: the
``warn`` and ``audit`` labels are refused on a Namespace rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from peapod.api.pod import Container, Pod

PREFIX = "pod-security.kubernetes.io/"
ENFORCE = PREFIX + "enforce"
ENFORCE_VERSION = PREFIX + "enforce-version"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"
_VERSION = re.compile(r"^(latest|v1\.(0|[1-9][0-9]*))$")

BASELINE_CAPABILITIES = frozenset((
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"))
RESTRICTED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret")


@dataclass(frozen=True)
class Policy:
    level: str
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


DEFAULT_POLICY = Policy(DEFAULT_LEVEL)


def parse_policy(text: str) -> Policy:
    """``LEVEL`` or ``LEVEL:VERSION``, as the apiserver's ``--pod-security`` flag takes it."""
    level, _, version = text.partition(":")
    problems = list(_value_problems(level, version or "latest", where="--pod-security"))
    if problems:
        raise ValueError("; ".join(problems))
    return Policy(level, version or "latest")


def label_problems(labels: dict[str, str]) -> list[str]:
    """What is wrong with a Namespace's pod-security labels, in Kubernetes' words."""
    problems = []
    for key in sorted(labels):
        if key.startswith(PREFIX) and key not in (ENFORCE, ENFORCE_VERSION):
            problems.append(f"metadata.labels[{key}]: Unsupported value: peapod enforces Pod "
                            f"Security levels only ({ENFORCE}, {ENFORCE_VERSION}); warn and "
                            "audit modes are not implemented")
    level, version = labels.get(ENFORCE), labels.get(ENFORCE_VERSION)
    problems.extend(_value_problems(level, version, where="metadata.labels"))
    return problems


def _value_problems(level: str | None, version: str | None, *, where: str) -> Iterable[str]:
    if level is not None and level not in LEVELS:
        yield (f'{where}[{ENFORCE}]: Invalid value: "{level}": must be one of privileged, '
               "baseline, restricted")
    if version is not None and not _VERSION.match(version):
        yield (f'{where}[{ENFORCE_VERSION}]: Invalid value: "{version}": must be "latest" or '
               '"v1.<minor>"')


def policy_for(labels: dict[str, str] | None, default: Policy) -> Policy:
    """The namespace's policy: its labels over the cluster's default."""
    labels = labels or {}
    level = labels.get(ENFORCE)
    if level is None:
        return Policy(default.level, labels.get(ENFORCE_VERSION) or default.version)
    if level not in LEVELS:  # stored before validation existed: fail closed, as Kubernetes
        return Policy("restricted", "latest")
    return Policy(level, labels.get(ENFORCE_VERSION) or "latest")


def forbidden_reason(pod: Pod, policy: Policy) -> str | None:
    """Kubernetes' refusal for ``pod`` under ``policy``, or None when it is allowed."""
    found = violations(pod, policy.level)
    if not found:
        return None
    listed = ", ".join(f"{reason} ({detail})" for reason, detail in found)
    return f'pods "{pod.metadata.name}" is forbidden: violates PodSecurity "{policy}": {listed}'


Check = Callable[[Pod], str | None]


def violations(pod: Pod, level: str) -> list[tuple[str, str]]:
    """(reason, detail) of each check ``pod`` fails at ``level``, in Kubernetes' order."""
    if level == "privileged":
        return []
    checks = dict(BASELINE)
    if level == "restricted":
        checks.update(RESTRICTED)
        del checks["seccompProfile_baseline"]  # the restricted check covers it, as in Kubernetes
    found = []
    for check_id in sorted(checks):
        reason, check = checks[check_id]
        detail = check(pod)
        if detail:
            found.append((reason, detail))
    return found


# -- helpers ---------------------------------------------------------------------------------

def _containers(names: list[str], verb: str, rest: str) -> str:
    """``container "a" must …`` / ``containers "a", "b" must …`` (``verb`` for one, plural)."""
    quoted = ", ".join(f'"{n}"' for n in names)
    noun = "container" if len(names) == 1 else "containers"
    return f"{noun} {quoted} {verb} {rest}"


def _joined(parts: Iterable[str | None]) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _all(pod: Pod) -> list[Container]:
    """Init containers (sidecars too) and app containers: Kubernetes checks them all."""
    return [*(pod.spec.init_containers or []), *pod.spec.containers]


def _ctx(container: Container) -> Any:
    return container.security_context


def _pod_ctx(pod: Pod) -> Any:
    return pod.spec.security_context


# -- baseline --------------------------------------------------------------------------------

def _app_armor(pod: Pod) -> str | None:
    parts = []
    pod_ctx = _pod_ctx(pod)
    if pod_ctx and pod_ctx.app_armor_profile and pod_ctx.app_armor_profile.type == "Unconfined":
        parts.append('pod must not set securityContext.appArmorProfile.type to "Unconfined"')
    bad = [c.name for c in _all(pod) if _ctx(c) and _ctx(c).app_armor_profile
           and _ctx(c).app_armor_profile.type == "Unconfined"]
    if bad:
        parts.append(_containers(bad, "must not set",
                                 'securityContext.appArmorProfile.type to "Unconfined"'))
    return _joined(parts)


def _capabilities_baseline(pod: Pod) -> str | None:
    names: list[str] = []
    caps: list[str] = []
    for c in _all(pod):
        added = [a.removeprefix("CAP_") for a in ((_ctx(c).capabilities.add or [])
                 if _ctx(c) and _ctx(c).capabilities else [])]
        extra = [a for a in added if a not in BASELINE_CAPABILITIES]
        if extra:
            names.append(c.name)
            caps.extend(a for a in extra if a not in caps)
    if not names:
        return None
    quoted = ", ".join(f'"{c}"' for c in sorted(caps))
    return _containers(names, "must not include", f"{quoted} in securityContext.capabilities.add")


def _host_namespaces(pod: Pod) -> str | None:
    spec = pod.spec
    flags = [f"{name}=true" for name, on in (("hostNetwork", spec.host_network),
                                              ("hostPID", spec.host_pid),
                                              ("hostIPC", spec.host_ipc)) if on]
    return ", ".join(flags) or None


def _host_path_volumes(pod: Pod) -> str | None:
    names = [v.name for v in pod.spec.volumes or [] if v.host_path is not None]
    if not names:
        return None
    return ("volume " if len(names) == 1 else "volumes ") + ", ".join(f'"{n}"' for n in names)


def _host_ports(pod: Pod) -> str | None:
    names, ports = [], []
    for c in _all(pod):
        used = [str(p.host_port) for p in c.ports or [] if p.host_port]
        if used:
            names.append(c.name)
            ports.extend(used)
    if not names:
        return None
    noun = "hostPort" if len(ports) == 1 else "hostPorts"
    return _containers(names, "uses" if len(names) == 1 else "use", f"{noun} {', '.join(ports)}")


def _privileged(pod: Pod) -> str | None:
    names = [c.name for c in _all(pod) if _ctx(c) and _ctx(c).privileged]
    return _containers(names, "must not set", "securityContext.privileged=true") if names else None


def _seccomp_baseline(pod: Pod) -> str | None:
    parts = []
    pod_ctx = _pod_ctx(pod)
    if pod_ctx and pod_ctx.seccomp_profile and pod_ctx.seccomp_profile.type == "Unconfined":
        parts.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [c.name for c in _all(pod) if _ctx(c) and _ctx(c).seccomp_profile
           and _ctx(c).seccomp_profile.type == "Unconfined"]
    if bad:
        parts.append(_containers(bad, "must not set",
                                 'securityContext.seccompProfile.type to "Unconfined"'))
    return _joined(parts)


BASELINE: dict[str, tuple[str, Check]] = {
    "appArmorProfile": ("forbidden AppArmor profile", _app_armor),
    "capabilities_baseline": ("non-default capabilities", _capabilities_baseline),
    "hostNamespaces": ("host namespaces", _host_namespaces),
    "hostPathVolumes": ("hostPath volumes", _host_path_volumes),
    "hostPorts": ("hostPort", _host_ports),
    "privileged": ("privileged", _privileged),
    "seccompProfile_baseline": ("seccompProfile", _seccomp_baseline),
}


# -- restricted ------------------------------------------------------------------------------

def _allow_privilege_escalation(pod: Pod) -> str | None:
    names = [c.name for c in _all(pod)
             if not (_ctx(c) and _ctx(c).allow_privilege_escalation is False)]
    if not names:
        return None
    return _containers(names, "must set", "securityContext.allowPrivilegeEscalation=false")


def _capabilities_restricted(pod: Pod) -> str | None:
    undropped: list[str] = []
    adders: list[str] = []
    added: list[str] = []
    for c in _all(pod):
        caps = _ctx(c).capabilities if _ctx(c) else None
        if not caps or "ALL" not in (caps.drop or []):
            undropped.append(c.name)
        extra = [a.removeprefix("CAP_") for a in (caps.add or [] if caps else [])
                 if a.removeprefix("CAP_") != "NET_BIND_SERVICE"]
        if extra:
            adders.append(c.name)
            added.extend(a for a in extra if a not in added)
    parts = []
    if undropped:
        parts.append(_containers(undropped, "must set", 'securityContext.capabilities.drop=["ALL"]'))
    if adders:
        quoted = ", ".join(f'"{a}"' for a in sorted(added))
        parts.append(_containers(adders, "must not include",
                                 f"{quoted} in securityContext.capabilities.add"))
    return _joined(parts)


def _restricted_volumes(pod: Pod) -> str | None:
    bad = [v.name for v in pod.spec.volumes or [] if v.host_path is not None]
    if not bad:
        return None
    if len(bad) == 1:
        return f'volume "{bad[0]}" uses restricted volume type "hostPath"'
    names = ", ".join(f'"{n}"' for n in bad)
    return f'volumes {names} use restricted volume type "hostPath"'


def _run_as_non_root(pod: Pod) -> str | None:
    pod_ctx = _pod_ctx(pod)
    pod_value = pod_ctx.run_as_non_root if pod_ctx else None
    parts = []
    if pod_value is False:
        parts.append("pod must not set securityContext.runAsNonRoot=false")
    explicit_false = [c.name for c in _all(pod)
                      if _ctx(c) and _ctx(c).run_as_non_root is False]
    if explicit_false:
        parts.append(_containers(explicit_false, "must not set",
                                 "securityContext.runAsNonRoot=false"))
    unset = [c.name for c in _all(pod)
             if (_ctx(c).run_as_non_root if _ctx(c) else None) is None and pod_value is not True]
    if unset:
        quoted = ", ".join(f'"{n}"' for n in unset)
        noun = "container" if len(unset) == 1 else "containers"
        parts.append(f"pod or {noun} {quoted} must set securityContext.runAsNonRoot=true")
    return _joined(parts)


def _run_as_user(pod: Pod) -> str | None:
    parts = []
    pod_ctx = _pod_ctx(pod)
    if pod_ctx and pod_ctx.run_as_user == 0:
        parts.append("pod must not set runAsUser=0")
    bad = [c.name for c in _all(pod) if _ctx(c) and _ctx(c).run_as_user == 0]
    if bad:
        parts.append(_containers(bad, "must not set", "runAsUser=0"))
    return _joined(parts)


def _seccomp_restricted(pod: Pod) -> str | None:
    pod_ctx = _pod_ctx(pod)
    pod_type = pod_ctx.seccomp_profile.type if pod_ctx and pod_ctx.seccomp_profile else None
    parts = []
    if pod_type == "Unconfined":
        parts.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    unconfined, unset = [], []
    for c in _all(pod):
        own = _ctx(c).seccomp_profile.type if _ctx(c) and _ctx(c).seccomp_profile else None
        if own == "Unconfined":
            unconfined.append(c.name)
        elif own is None and pod_type is None:
            unset.append(c.name)
    if unconfined:
        parts.append(_containers(unconfined, "must not set",
                                 'securityContext.seccompProfile.type to "Unconfined"'))
    if unset:
        quoted = ", ".join(f'"{n}"' for n in unset)
        noun = "container" if len(unset) == 1 else "containers"
        parts.append(f'pod or {noun} {quoted} must set securityContext.seccompProfile.type to '
                     '"RuntimeDefault" or "Localhost"')
    return _joined(parts)


RESTRICTED: dict[str, tuple[str, Check]] = {
    "allowPrivilegeEscalation": ("allowPrivilegeEscalation != false",
                                 _allow_privilege_escalation),
    "capabilities_restricted": ("unrestricted capabilities", _capabilities_restricted),
    "restrictedVolumes": ("restricted volume types", _restricted_volumes),
    "runAsNonRoot": ("runAsNonRoot != true", _run_as_non_root),
    "runAsUser": ("runAsUser=0", _run_as_user),
    "seccompProfile_restricted": ("seccompProfile", _seccomp_restricted),
}
