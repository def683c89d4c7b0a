"""``peapod doctor``: check this machine can run a node, and say how to fix what cannot.

A kubelet fails late and far from the cause: a pod stays ``ContainerCreating``
because crun refused a hybrid cgroup layout, or because runc could not raise
``nofile`` above the host's hard limit without CAP_SYS_RESOURCE. Each check
here looks at one such cause directly (the binaries, the podman configuration
in effect, the cgroup mounts, the rlimits, the podman socket, the NATS server)
and returns a ``CheckResult`` whose ``fix`` is one line a user can act on.

Checks read files and run ``podman`` with an argument list; they never change
the machine. A failure means a node cannot work; a warning means something
will not behave as asked (limits not applied, no cluster configured yet) or
that the kubelet will take care of it itself.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.client
import json
import math
import resource
import shutil
import socket
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from peapod.errors import Invalid

Status = Literal["ok", "warn", "fail"]

SHIPPED_CONF = Path(__file__).resolve().parents[3] / "deploy" / "podman" / "containers.conf"
# Read by podman in this order when CONTAINERS_CONF is unset; later files override earlier ones.
SYSTEM_CONFS = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")
SYSTEM_CONF_DIR = "/etc/containers/containers.conf.d"
CATATONIT_PATHS = ("/usr/libexec/podman/catatonit", "/usr/lib/podman/catatonit")
PODMAN_DEFAULT_RLIMIT = 1048576  # what podman gives a root container when default_ulimits is unset
RLIMITS = {"nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC}
NEEDED_CONTROLLERS = ("cpu", "memory", "pids")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _export_conf_fix() -> str:
    return f"export CONTAINERS_CONF={SHIPPED_CONF}"


def _podman_version(path: str) -> str | None:
    """``podman version --format json``, else the last word of ``podman --version``."""
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=20, check=True)
    with contextlib.suppress(subprocess.SubprocessError, OSError, ValueError, KeyError):
        return str(json.loads(run([path, "version", "--format", "json"]).stdout)["Client"]["Version"])
    with contextlib.suppress(subprocess.SubprocessError, OSError, IndexError):
        return str(run([path, "--version"]).stdout.split()[-1])
    return None


def check_podman() -> CheckResult:
    path = shutil.which("podman")
    if path is None:
        return CheckResult("podman", "fail", "not installed", "apt-get install podman")
    version = _podman_version(path)
    if version is None:
        return CheckResult("podman", "fail", f"{path} does not run (`podman --version` failed)",
                           "reinstall it: apt-get install --reinstall podman")
    return CheckResult("podman", "ok", f"{version} ({path})")


def read_containers_conf(path: str | None) -> tuple[dict[str, Any], str]:
    """The configuration podman will use, and where it came from.

    Like podman: CONTAINERS_CONF, when set, is the only file read; otherwise the system files.
    """
    files = [path] if path else [*SYSTEM_CONFS, *sorted(glob.glob(SYSTEM_CONF_DIR + "/*.conf"))]
    merged: dict[str, Any] = {}
    for name in files:
        try:
            with open(name, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            if path:
                raise Invalid(f"CONTAINERS_CONF={path} does not exist") from None
            continue
        except tomllib.TOMLDecodeError as exc:
            raise Invalid(f"{name} is not valid TOML: {exc}") from None
        for table, values in data.items():
            if isinstance(values, dict):
                merged.setdefault(table, {}).update(values)
    return merged, path or "podman's defaults"


def check_containers_conf(path: str | None) -> CheckResult:
    try:
        _, source = read_containers_conf(path)
    except Invalid as exc:
        return CheckResult("containers.conf", "fail", exc.message, _export_conf_fix())
    if path is None:
        return CheckResult("containers.conf", "warn", "CONTAINERS_CONF is not set: podman reads the "
                           "system files, not peapod's", _export_conf_fix())
    return CheckResult("containers.conf", "ok", source)


def cgroup_layout(mounts: str) -> str:
    """``unified`` if /sys/fs/cgroup is cgroup2 itself, ``hybrid`` if v1 and v2 are mixed, else ``legacy``."""
    entries = [line.split()[1:3] for line in mounts.splitlines() if len(line.split()) > 2]
    if ["/sys/fs/cgroup", "cgroup2"] in entries:
        return "unified"
    return "hybrid" if any(fstype == "cgroup2" for _, fstype in entries) else "legacy"


def check_oci_runtime(conf: dict[str, Any], layout: str) -> CheckResult:
    runtime = conf.get("engine", {}).get("runtime", "crun")
    if runtime == "crun" and layout != "unified":
        return CheckResult("oci runtime", "fail", f"crun cannot run on {layout} cgroups",
                           f'apt-get install runc; set runtime = "runc" in containers.conf '
                           f"({_export_conf_fix()})")
    candidates = conf.get("engine", {}).get("runtimes", {}).get(runtime, [])
    found = shutil.which(runtime) or next((p for p in candidates if Path(p).is_file()), None)
    if found is None:
        return CheckResult("oci runtime", "fail", f"{runtime} is not installed", f"apt-get install {runtime}")
    return CheckResult("oci runtime", "ok", f"{runtime} ({found}, {layout} cgroups)")


def check_catatonit() -> CheckResult:
    found = shutil.which("catatonit") or next((p for p in CATATONIT_PATHS if Path(p).is_file()), None)
    if found is None:
        return CheckResult("catatonit", "fail", "not found: podman cannot build the pod pause image",
                           "apt-get install catatonit")
    return CheckResult("catatonit", "ok", found)


def available_controllers(mounts: str) -> set[str]:
    """Controllers mounted as cgroup v1 hierarchies, plus those the cgroup2 root offers."""
    found: set[str] = set()
    for line in mounts.splitlines():
        fields = [*line.split(), "", "", "", ""]  # short lines match nothing below
        if fields[2] == "cgroup":
            found.update(fields[3].split(","))
        elif fields[2] == "cgroup2":
            controllers = Path(fields[1]) / "cgroup.controllers"
            if controllers.is_file():
                found.update(controllers.read_text().split())
    return found


def check_cgroup_controllers(mounts: str) -> CheckResult:
    found = available_controllers(mounts)
    missing = [c for c in NEEDED_CONTROLLERS if c not in found]
    have = ", ".join(c for c in NEEDED_CONTROLLERS if c in found) or "none"
    if missing:
        return CheckResult("cgroups", "warn", f"{', '.join(missing)} controller missing: "
                           "resource limits on those will not apply",
                           "enable it on the kernel command line (e.g. cgroup_enable=memory) and reboot")
    return CheckResult("cgroups", "ok", f"{have} ({cgroup_layout(mounts)})")


def _limit(value: int) -> float:
    return math.inf if value in (resource.RLIM_INFINITY, -1) else value


def parse_ulimit(spec: str) -> tuple[str, float, float]:
    """``"nofile=4096:8192"`` -> ``("nofile", 4096, 8192)``; one number sets both soft and hard."""
    name, _, values = spec.partition("=")
    soft, _, hard = values.partition(":")
    try:
        return name.strip(), _limit(int(soft)), _limit(int(hard or soft))
    except ValueError:
        raise Invalid(f"default_ulimits entry {spec!r} is not name=soft[:hard]") from None


def _show(value: float) -> str:
    return "unlimited" if value == math.inf else str(int(value))


def check_rlimits(conf: dict[str, Any]) -> CheckResult:
    """A container's limits must fit under the host's hard limit: raising it needs CAP_SYS_RESOURCE."""
    host = {name: tuple(_limit(v) for v in resource.getrlimit(res)) for name, res in RLIMITS.items()}
    specs = conf.get("containers", {}).get("default_ulimits", [])
    try:
        wanted = {name: (soft, hard) for name, soft, hard in map(parse_ulimit, specs) if name in RLIMITS}
    except Invalid as exc:
        return CheckResult("rlimits", "fail", exc.message, _export_conf_fix())
    too_high = [f"{name}={_show(soft)}:{_show(hard)} exceeds the host's hard limit {_show(host[name][1])}"
                for name, (soft, hard) in wanted.items() if max(soft, hard) > host[name][1]]
    if too_high:
        return CheckResult("rlimits", "fail", "; ".join(too_high),
                           "lower default_ulimits in containers.conf to at most `ulimit -Hn` / `ulimit -Hu`")
    unset = [name for name in RLIMITS if name not in wanted and host[name][1] < PODMAN_DEFAULT_RLIMIT]
    if unset:
        return CheckResult("rlimits", "warn", f"no default_ulimits for {', '.join(unset)}: podman's default "
                           f"{PODMAN_DEFAULT_RLIMIT} exceeds the host's", _export_conf_fix())
    shown = ", ".join(f"{n}={_show(s)}:{_show(h)}" for n, (s, h) in wanted.items()) or "podman's defaults"
    host_shown = ", ".join(f"{n}={_show(s)}:{_show(h)}" for n, (s, h) in host.items())
    return CheckResult("rlimits", "ok", f"{shown} within the host's {host_shown}")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def check_podman_socket(path: str, timeout: float = 2) -> CheckResult:
    conn = _UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", "/_ping")
        reply = conn.getresponse()
        body = reply.read().decode(errors="replace").strip()
        api = reply.getheader("Libpod-Api-Version", "unknown")
    except OSError as exc:
        return CheckResult("podman socket", "warn", f"{path} does not answer ({exc.strerror or exc})",
                           "the kubelet starts `podman system service` itself; by hand: "
                           f"podman system service --time=0 unix://{path} &")
    finally:
        conn.close()
    if reply.status != 200:
        return CheckResult("podman socket", "fail", f"{path} answered {reply.status} {body}",
                           "restart the podman service on that socket")
    return CheckResult("podman socket", "ok", f"{path} (API {api})")


def read_nats_info(host: str, port: int, timeout: float) -> dict[str, Any]:
    """Connect and read the ``INFO {...}`` line every nats-server sends first."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        data = b""
        while b"\r\n" not in data and len(data) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if not line.startswith("INFO "):
        raise ValueError(f"not a NATS server (said {line[:40]!r})")
    return dict(json.loads(line[5:]))


def check_nats(url: str | None, timeout: float = 2) -> CheckResult:
    if url is None:
        return CheckResult("nats", "warn", "no cluster configured", "run `peapod up` or pass --context")
    first = urlsplit(url.split(",")[0].strip())
    host, port = first.hostname or "127.0.0.1", first.port or 4222
    try:
        info = read_nats_info(host, port, timeout)
    except (OSError, ValueError) as exc:
        return CheckResult("nats", "fail", f"{host}:{port} unreachable: {exc}",
                           "start the cluster (`peapod up`) or check the URL in the context file")
    return CheckResult("nats", "ok", f"nats-server {info.get('version', '?')} at {host}:{port}")


def run_checks(*, nats_url: str | None, podman_socket: str, containers_conf: str | None) -> list[CheckResult]:
    try:
        conf, _ = read_containers_conf(containers_conf)
    except Invalid:
        conf = {}  # check_containers_conf reports why; the rest judge podman's defaults
    mounts = Path("/proc/mounts").read_text()
    return [
        check_podman(),
        check_containers_conf(containers_conf),
        check_oci_runtime(conf, cgroup_layout(mounts)),
        check_catatonit(),
        check_cgroup_controllers(mounts),
        check_rlimits(conf),
        check_podman_socket(podman_socket),
        check_nats(nats_url),
    ]


TAGS = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}


def format_results(results: list[CheckResult]) -> str:
    lines = []
    for result in results:
        line = f"{TAGS[result.status]} {result.name}: {result.detail}"
        lines.append(f"{line} -> fix: {result.fix}" if result.fix and result.status != "ok" else line)
    return "\n".join(lines)


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.status == "fail" for r in results) else 0
