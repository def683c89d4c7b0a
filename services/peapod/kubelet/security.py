"""A Pod's securityContext as podman's API expresses it.

The container's context overrides the pod's (Kubernetes'
DetermineEffectiveSecurityContext). What podman sets:

* ``runAsUser``/``runAsGroup`` → ``user`` (``uid[:gid]``; a group alone keeps
  the image's user); ``supplementalGroups`` and ``fsGroup`` → ``groups``;
* ``capabilities`` → ``cap_add``/``cap_drop`` (``CAP_`` prefixed; ``ALL``);
* ``privileged``, ``readOnlyRootFilesystem`` → ``read_only_filesystem``,
  ``allowPrivilegeEscalation: false`` → ``no_new_privileges``;
* ``seccompProfile``: ``RuntimeDefault`` and no profile are podman's default
  profile (as a kubelet with ``seccompDefault: true``), ``Unconfined`` none,
  ``Localhost`` the file ``<kubelet state dir>/seccomp/<localhostProfile>``;
* ``appArmorProfile: Unconfined`` → ``apparmor_profile: unconfined`` (other
  types are refused at admission);
* ``sysctls`` are set on the pod's sandbox, whose namespaces every container
  shares;
* ``fsGroup`` owns each emptyDir on disk (group ``fsGroup``, setgid, as
  Kubernetes' SetVolumeOwnership).

``runAsNonRoot`` is checked here, before a container is created, against the
effective user or the image's, with Kubernetes' messages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peapod.api import Container, Pod
from peapod.api.security import SeccompProfile, normalize_capability

# Kubernetes makes every emptyDir 0777; with an fsGroup it also gets that group and setgid.
EMPTY_DIR_MODE = 0o777


class Refusal(Exception):
    """A container that must not start, with Kubernetes' reason and message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Effective:
    run_as_user: int | None
    run_as_group: int | None
    run_as_non_root: bool | None
    seccomp: SeccompProfile | None
    unconfined_apparmor: bool


def effective(pod: Pod, spec: Container) -> Effective:
    """The container's context over the pod's, field by field."""
    pod_ctx, ctx = pod.spec.security_context, spec.security_context

    def pick(field: str) -> Any:
        own = getattr(ctx, field) if ctx else None
        return own if own is not None else (getattr(pod_ctx, field) if pod_ctx else None)

    armor = pick("app_armor_profile")
    return Effective(run_as_user=pick("run_as_user"), run_as_group=pick("run_as_group"),
                     run_as_non_root=pick("run_as_non_root"), seccomp=pick("seccomp_profile"),
                     unconfined_apparmor=armor is not None and armor.type == "Unconfined")


def container_fields(pod: Pod, spec: Container, *, seccomp_dir: Path,
                     image_user: Callable[[], str]) -> dict[str, Any]:
    """podman's SpecGenerator fields for ``spec``'s security; raises Refusal."""
    eff = effective(pod, spec)
    check_run_as_non_root(pod, spec, eff, image_user)
    body: dict[str, Any] = {}
    user = _user(eff, image_user)
    if user:
        body["user"] = user
    groups = supplementary_groups(pod)
    if groups:
        body["groups"] = [str(g) for g in groups]
    ctx = spec.security_context
    if ctx is not None:
        caps = ctx.capabilities
        if caps and caps.add:
            body["cap_add"] = [_cap(c) for c in caps.add]
        if caps and caps.drop:
            body["cap_drop"] = [_cap(c) for c in caps.drop]
        if ctx.privileged:
            body["privileged"] = True
        if ctx.read_only_root_filesystem:
            body["read_only_filesystem"] = True
        if ctx.allow_privilege_escalation is False:
            body["no_new_privileges"] = True
    # a privileged container runs unconfined whatever the pod's profile, as in Kubernetes
    profile = None if ctx is not None and ctx.privileged else _seccomp_path(eff.seccomp,
                                                                             seccomp_dir)
    if profile:
        body["seccomp_profile_path"] = profile
    if eff.unconfined_apparmor:
        body["apparmor_profile"] = "unconfined"
    return body


def sandbox_fields(pod: Pod) -> dict[str, Any]:
    """podman's pod fields: the pod's sysctls, set in the namespaces its containers share."""
    ctx = pod.spec.security_context
    sysctls = {s.name.replace("/", "."): s.value for s in (ctx.sysctls or [])} if ctx else {}
    return {"sysctl": sysctls} if sysctls else {}


def supplementary_groups(pod: Pod) -> list[int]:
    ctx = pod.spec.security_context
    if ctx is None:
        return []
    groups = list(ctx.supplemental_groups or [])
    if ctx.fs_group is not None and ctx.fs_group not in groups:
        groups.append(ctx.fs_group)
    return groups


def prepare_empty_dir(path: Path, pod: Pod) -> None:
    """An emptyDir on disk: mode 0777, and group ``fsGroup`` with setgid when one is set."""
    path.mkdir(parents=True, exist_ok=True)
    ctx = pod.spec.security_context
    fs_group = ctx.fs_group if ctx else None
    if fs_group is None:
        path.chmod(EMPTY_DIR_MODE)
        return
    os.chown(path, -1, fs_group)
    path.chmod(EMPTY_DIR_MODE | 0o2000)


def check_run_as_non_root(pod: Pod, spec: Container, eff: Effective,
                          image_user: Callable[[], str]) -> None:
    """Kubernetes' verifyRunAsNonRoot, with its messages."""
    if not eff.run_as_non_root:
        return
    meta = pod.metadata
    where = f'(pod: "{meta.name}_{meta.namespace}({meta.uid})", container: {spec.name})'
    if eff.run_as_user is not None:
        if eff.run_as_user == 0:
            raise Refusal("CreateContainerConfigError",
                          f"container's runAsUser breaks non-root policy {where}")
        return
    user = image_user().partition(":")[0]
    if not user or user == "0":
        raise Refusal("CreateContainerConfigError",
                      f"container has runAsNonRoot and image will run as root {where}")
    if not user.isdigit():
        raise Refusal("CreateContainerConfigError",
                      f"container has runAsNonRoot and image has non-numeric user ({user}), "
                      f"cannot verify user is non-root {where}")


def _user(eff: Effective, image_user: Callable[[], str]) -> str | None:
    if eff.run_as_group is None:
        return None if eff.run_as_user is None else str(eff.run_as_user)
    uid = str(eff.run_as_user) if eff.run_as_user is not None else (
        image_user().partition(":")[0] or "0")
    return f"{uid}:{eff.run_as_group}"


def _cap(name: str) -> str:
    return "ALL" if name == "ALL" else f"CAP_{normalize_capability(name)}"


def _seccomp_path(profile: SeccompProfile | None, seccomp_dir: Path) -> str | None:
    if profile is None or profile.type == "RuntimeDefault":
        return None
    if profile.type == "Unconfined":
        return "unconfined"
    path = seccomp_dir / (profile.localhost_profile or "")
    if not path.is_file():
        raise Refusal("CreateContainerError",
                      f'cannot load seccomp profile "{path}": open {path}: no such file or '
                      "directory")
    return str(path)
