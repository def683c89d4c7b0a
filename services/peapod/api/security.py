"""securityContext, pod and container level, as Kubernetes' core/v1 defines it.

The container's context overrides the pod's for the fields both have
(``runAsUser``, ``runAsGroup``, ``runAsNonRoot``, ``seccompProfile``,
``appArmorProfile``, ``seLinuxOptions``, ``windowsOptions``), as in
Kubernetes. What a node running podman cannot honour is refused here with a
line naming the field, never ignored: SELinux labels (peapod's nodes run
without SELinux), AppArmor profiles other than ``Unconfined``, Windows
options, and sysctls outside Kubernetes' safe, namespaced set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from peapod.api.base import Model

MAX_ID = 2147483647

# Every Linux capability, by Kubernetes' name (without CAP_), as of Linux 5.9.
CAPABILITIES = frozenset((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
))

# Kubernetes' safe sysctls (pkg/kubelet/sysctl/safe_sysctls.go): namespaced, isolated per pod.
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
)
_SYSCTL_NAME = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")


class Capabilities(Model):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(Model):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None


class AppArmorProfile(Model):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None


class Sysctl(Model):
    name: str
    value: str


class _Shared(Model):
    """The fields the pod's and the container's contexts share; the container's win."""

    run_as_user: int | None = Field(default=None, ge=0, le=MAX_ID)
    run_as_group: int | None = Field(default=None, ge=0, le=MAX_ID)
    run_as_non_root: bool | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None
    # accepted by the parser only to be refused with a line that names them
    se_linux_options: dict[str, Any] | None = None
    windows_options: dict[str, Any] | None = None


class SecurityContext(_Shared):
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    proc_mount: Literal["Default"] | None = None


class PodSecurityContext(_Shared):
    fs_group: int | None = Field(default=None, ge=0, le=MAX_ID)
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = None
    supplemental_groups: list[int] | None = None
    supplemental_groups_policy: Literal["Merge"] | None = None
    sysctls: list[Sysctl] | None = None


def normalize_capability(name: str) -> str:
    """Kubernetes' name of a capability (``NET_ADMIN``); ``CAP_NET_ADMIN`` is accepted too."""
    return name.removeprefix("CAP_")


def context_problems(where: str, ctx: _Shared) -> Iterator[str]:
    """What cannot be honoured, or is malformed, in a pod's or a container's context."""
    if ctx.se_linux_options is not None:
        yield (f"{where}.seLinuxOptions: Forbidden: peapod's nodes run without SELinux "
               "labelling, so the options cannot be honoured; remove the field")
    if ctx.windows_options is not None:
        yield (f"{where}.windowsOptions: Forbidden: peapod runs Linux containers only; "
               "remove the field")
    armor = ctx.app_armor_profile
    if armor is not None and armor.type != "Unconfined":
        yield (f'{where}.appArmorProfile.type: Unsupported value: "{armor.type}": peapod\'s '
               'nodes do not load AppArmor profiles; only "Unconfined" can be honoured')
    yield from _profile_problems(f"{where}.seccompProfile", ctx.seccomp_profile)
    if isinstance(ctx, SecurityContext):
        yield from _container_problems(where, ctx)
    elif isinstance(ctx, PodSecurityContext):
        yield from _pod_problems(where, ctx)


def _profile_problems(where: str, profile: SeccompProfile | None) -> Iterator[str]:
    if profile is None:
        return
    local = profile.localhost_profile
    if profile.type == "Localhost":
        if not local:
            yield (f"{where}.localhostProfile: Required value: must be set when seccomp type "
                   "is Localhost")
        elif local.startswith("/") or ".." in local.split("/"):
            yield (f'{where}.localhostProfile: Invalid value: "{local}": must be a relative '
                   "path within the kubelet's seccomp directory, without '..'")
    elif local is not None:
        yield (f'{where}.localhostProfile: Invalid value: "{local}": can only be set when '
               "seccomp type is Localhost")


def _container_problems(where: str, ctx: SecurityContext) -> Iterator[str]:
    caps = ctx.capabilities
    for section in ("add", "drop"):
        for i, name in enumerate(getattr(caps, section) or [] if caps else []):
            if name != "ALL" and normalize_capability(name) not in CAPABILITIES:
                yield (f'{where}.capabilities.{section}[{i}]: Unsupported value: "{name}": not '
                       "a Linux capability (Kubernetes names them without CAP_, e.g. NET_ADMIN, "
                       "or ALL)")
    if ctx.allow_privilege_escalation is False:
        if ctx.privileged:
            yield (f"{where}: Invalid value: cannot set `allowPrivilegeEscalation` to false and "
                   "`privileged` to true")
        if caps and any(normalize_capability(c) == "SYS_ADMIN" for c in caps.add or []):
            yield (f"{where}: Invalid value: cannot set `allowPrivilegeEscalation` to false and "
                   "`capabilities.Add` CAP_SYS_ADMIN")


def _pod_problems(where: str, ctx: PodSecurityContext) -> Iterator[str]:
    for i, gid in enumerate(ctx.supplemental_groups or []):
        if not 0 <= gid <= MAX_ID:
            yield (f"{where}.supplementalGroups[{i}]: Invalid value: {gid}: must be between 0 "
                   f"and {MAX_ID}, inclusive")
    seen: set[str] = set()
    for i, sysctl in enumerate(ctx.sysctls or []):
        path = f"{where}.sysctls[{i}].name"
        if not _SYSCTL_NAME.match(sysctl.name) or len(sysctl.name) > 253:
            yield f'{path}: Invalid value: "{sysctl.name}": not a sysctl name'
        elif sysctl.name.replace("/", ".") in seen:
            yield f'{path}: Duplicate value: "{sysctl.name}"'
        elif sysctl.name.replace("/", ".") not in SAFE_SYSCTLS:
            yield (f'{path}: Forbidden: sysctl "{sysctl.name}" is not one of Kubernetes\' safe '
                   f"sysctls, the only ones a peapod node sets: {', '.join(SAFE_SYSCTLS)}")
        seen.add(sysctl.name.replace("/", "."))


# -- the pod's host namespaces, /etc/hosts and DNS ------------------------------------------

class HostAlias(Model):
    ip: str
    hostnames: list[str] | None = None


class PodDNSConfigOption(Model):
    name: str
    value: str | None = None


class PodDNSConfig(Model):
    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


def host_problems(spec: Any) -> Iterator[str]:
    """Kubernetes' checks of hostNetwork, hostPID, hostAliases and DNS across the spec."""
    if spec.share_process_namespace and spec.host_pid:
        yield ("spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and "
               "HostPID cannot both be enabled")
    if spec.host_network:
        for i, container in enumerate(spec.containers):
            for j, port in enumerate(container.ports or []):
                if port.host_port is not None and port.host_port != port.container_port:
                    yield (f"spec.containers[{i}].ports[{j}].hostPort: Invalid value: "
                           f"{port.host_port}: must match `containerPort` when `hostNetwork` "
                           "is true")
    for i, alias in enumerate(spec.host_aliases or []):
        if not _is_ip(alias.ip):
            yield f'spec.hostAliases[{i}].ip: Invalid value: "{alias.ip}": must be a valid IP address'
        for j, name in enumerate(alias.hostnames or []):
            if not _DNS_NAME.match(name) or len(name) > 253:
                yield (f'spec.hostAliases[{i}].hostnames[{j}]: Invalid value: "{name}": a '
                       "lowercase RFC 1123 subdomain")
    if spec.dns_policy == "None" and spec.dns_config is None:
        yield "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
    if spec.dns_config is not None:
        yield from _dns_config_problems(spec.dns_policy, spec.dns_config)


def _dns_config_problems(policy: str | None, config: PodDNSConfig) -> Iterator[str]:
    servers = config.nameservers or []
    if len(servers) > MAX_NAMESERVERS:
        yield (f"spec.dnsConfig.nameservers: Invalid value: {servers}: must not have more than "
               f"{MAX_NAMESERVERS} nameservers")
    for i, server in enumerate(servers):
        if not _is_ip(server):
            yield (f'spec.dnsConfig.nameservers[{i}]: Invalid value: "{server}": must be a '
                   "valid IP address")
    if policy == "None" and not servers:
        yield ("spec.dnsConfig.nameservers: Required value: peapod needs at least one nameserver "
               "when `dnsPolicy` is None (podman cannot give a container an empty resolv.conf)")
    searches = config.searches or []
    if len(searches) > MAX_SEARCHES:
        yield (f"spec.dnsConfig.searches: Invalid value: {searches}: must not have more than "
               f"{MAX_SEARCHES} search paths")
    for i, search in enumerate(searches):
        if not _DNS_NAME.match(search.rstrip(".")):
            yield f'spec.dnsConfig.searches[{i}]: Invalid value: "{search}": a DNS subdomain'
    for i, option in enumerate(config.options or []):
        if not option.name:
            yield f"spec.dnsConfig.options[{i}].name: Required value: must not be empty"


_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
