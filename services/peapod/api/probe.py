"""Probes and lifecycle hooks, as Kubernetes' core/v1 defines them, with its defaults.

A Probe has exactly one handler (``exec``, ``httpGet``, ``tcpSocket``,
``grpc``); a lifecycle handler one of ``exec``, ``httpGet``, ``sleep``.
The cross-field rules (one handler, ``successThreshold`` 1 for liveness and
startup, no probes on an init container that is not a sidecar) are in
``validation.py`` so each message names its exact path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.base import Model


class ExecAction(Model):
    command: list[str] | None = None


class HTTPHeader(Model):
    name: str
    value: str


class HTTPGetAction(Model):
    path: str = "/"  # Kubernetes' default
    port: int | str
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(Model):
    port: int | str
    host: str | None = None


class GRPCAction(Model):
    port: int  # a number only (no port names), checked by probe_problems in Kubernetes' words
    service: str | None = None


class SleepAction(Model):
    seconds: int = Field(ge=0)


class Probe(Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int | None = Field(default=None, ge=0)
    timeout_seconds: int = Field(default=1, ge=1)
    period_seconds: int = Field(default=10, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)
    termination_grace_period_seconds: int | None = Field(default=None, ge=1)

    def handlers(self) -> list[str]:
        return [name for name, value in (("exec", self.exec), ("httpGet", self.http_get),
                                         ("tcpSocket", self.tcp_socket), ("grpc", self.grpc))
                if value is not None]


class LifecycleHandler(Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    sleep: SleepAction | None = None

    def handlers(self) -> list[str]:
        return [name for name, value in (("exec", self.exec), ("httpGet", self.http_get),
                                         ("sleep", self.sleep)) if value is not None]


class Lifecycle(Model):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


ProbeKind = Literal["liveness", "readiness", "startup"]

_SVC_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _port_problems(path: str, port: int | str) -> list[str]:
    """Kubernetes' ValidatePortNumOrName: 1..65535, or an IANA service name."""
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            return [f"{path}: Invalid value: {port}: must be between 1 and 65535, inclusive"]
        return []
    if (not port or len(port) > 15 or not set(port) <= _SVC_NAME_CHARS or "--" in port
            or port[0] == "-" or port[-1] == "-" or not any(c.isalpha() for c in port)):
        return [f"{path}: Invalid value: {port!r}: must be a port number or an IANA service "
                "name: at most 15 characters, a-z, 0-9 and '-', with at least one letter"]
    return []


def _action_problems(path: str, handler: Probe | LifecycleHandler) -> list[str]:
    problems: list[str] = []
    names = handler.handlers()
    if not names:
        problems.append(f"{path}: Required value: must specify a handler type")
    for extra in names[1:]:
        problems.append(f"{path}.{extra}: Forbidden: may not specify more than 1 handler type")
    if handler.exec is not None and not handler.exec.command:
        problems.append(f"{path}.exec.command: Required value")
    if handler.http_get is not None:
        problems.extend(_port_problems(f"{path}.httpGet.port", handler.http_get.port))
    tcp = getattr(handler, "tcp_socket", None)
    if tcp is not None:
        problems.extend(_port_problems(f"{path}.tcpSocket.port", tcp.port))
    grpc = getattr(handler, "grpc", None)
    if grpc is not None:
        problems.extend(_port_problems(f"{path}.grpc.port", grpc.port))
    return problems


def probe_problems(where: str, probes: dict[str, Probe | None], lifecycle: Lifecycle | None, *,
                   init: bool, grace: int) -> list[str]:
    """The rules Kubernetes' validation applies to a container's probes and hooks.

    ``probes`` maps ``livenessProbe``/``readinessProbe``/``startupProbe`` to the
    container's; ``init`` is an init container that is not a sidecar, which may
    have none of them; ``grace`` the pod's terminationGracePeriodSeconds.
    """
    problems: list[str] = []
    handlers: dict[str, Probe | LifecycleHandler | None] = dict(probes)
    if lifecycle is not None:
        handlers["lifecycle"] = lifecycle  # type: ignore[assignment]
    for field, value in handlers.items():
        if value is not None and init:
            problems.append(f"{where}.{field}: Forbidden: may not be set for init containers "
                            "without restartPolicy=Always")
    for field, probe in probes.items():
        if probe is None:
            continue
        path = f"{where}.{field}"
        problems.extend(_action_problems(path, probe))
        if field != "readinessProbe" and probe.success_threshold != 1:
            problems.append(f"{path}.successThreshold: Invalid value: "
                            f"{probe.success_threshold}: must be 1")
        if field == "readinessProbe" and probe.termination_grace_period_seconds is not None:
            problems.append(f"{path}.terminationGracePeriodSeconds: Invalid value: "
                            f"{probe.termination_grace_period_seconds}: must not be set for "
                            "readinessProbes")
    for field in ("postStart", "preStop"):
        hook = getattr(lifecycle, "post_start" if field == "postStart" else "pre_stop", None)
        if hook is None:
            continue
        path = f"{where}.lifecycle.{field}"
        problems.extend(_action_problems(path, hook))
        if hook.sleep is not None and hook.sleep.seconds >= max(grace, 1):
            problems.append(f"{path}.sleep.seconds: Invalid value: {hook.sleep.seconds}: must "
                            f"be non-negative and less than terminationGracePeriodSeconds "
                            f"({grace})")
    return problems
