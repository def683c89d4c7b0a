"""``peapod doctor``: check this machine can run a node, and say how to fix what cannot.

A kubelet fails late and far from the cause: a pod stays ``ContainerCreating``
because crun refused a hybrid cgroup layout, or because runc could not raise
``nofile`` above the host's hard limit without CAP_SYS_RESOURCE. Each check
here looks at one such cause directly (the binaries, the podman configuration
in effect, the cgroup mounts, the rlimits, the podman socket, the NATS server)
and returns a ``CheckResult`` whose ``fix`` is one line a user can act on.

A fleet's NATS link is TLS with a private CA, and certificates expire on a
date nobody remembers. When the context names a certificate authority, the
doctor reads the CA's expiry and, as a client would, opens a connection to
the first server, reads its ``INFO`` line, performs the TLS handshake against
that CA and reads the server certificate's expiry: a warning 30 days ahead,
a failure once expired or when the certificate does not verify.

Where ``peapod up`` runs the cluster, the doctor also reads ``pids.json`` and
checks that each process it names still runs as peapod started it: a
component that is down, or a supervisor that is gone, is a failure even when
the NATS server answers.

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
import ssl
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
CERT_WARN_DAYS = 30
ROTATE_FIX = "re-run the playbook to rotate it"


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


def _read_info(sock: socket.socket) -> dict[str, Any]:
    """The ``INFO {...}`` line every nats-server sends first (before any TLS)."""
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


def read_nats_info(host: str, port: int, timeout: float) -> dict[str, Any]:
    """Connect and read the server's ``INFO`` line."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        return _read_info(sock)


def first_server(url: str) -> tuple[str, int]:
    first = urlsplit(url.split(",")[0].strip())
    return first.hostname or "127.0.0.1", first.port or 4222


def check_nats(url: str | None, timeout: float = 2, *, no_cluster: str | None = None) -> CheckResult:
    if url is None:
        return CheckResult("nats", "warn", no_cluster or "no cluster configured",
                           "run `peapod up`, or select a context: peapod config use-context NAME")
    host, port = first_server(url)
    try:
        info = read_nats_info(host, port, timeout)
    except (OSError, ValueError) as exc:
        return CheckResult("nats", "fail", f"{host}:{port} unreachable: {exc}",
                           "start the cluster (`peapod up`) or check the context's server "
                           "(peapod config view --minify)")
    return CheckResult("nats", "ok", f"nats-server {info.get('version', '?')} at {host}:{port}")


def judge_expiry(name: str, subject: str, not_after: str, now: datetime) -> CheckResult:
    """ok, warn within CERT_WARN_DAYS of ``notAfter`` (OpenSSL's text form), fail once past it."""
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    days = (expires - now) // timedelta(days=1)
    if expires <= now:
        return CheckResult(name, "fail", f"certificate of {subject} expired {_days(-days)} ago "
                           f"({not_after})", ROTATE_FIX)
    if days < CERT_WARN_DAYS:
        return CheckResult(name, "warn", f"certificate of {subject} expires in {_days(days)} "
                           f"({not_after})", ROTATE_FIX)
    return CheckResult(name, "ok", f"certificate of {subject} valid until {not_after} ({_days(days)})")


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def check_ca_file(path: str, *, now: datetime) -> CheckResult:
    """The cluster CA of the context: readable, and not about to expire."""
    try:
        certs = ssl.create_default_context(cafile=path).get_ca_certs()
    except (OSError, ssl.SSLError) as exc:
        return CheckResult("cluster CA", "fail", f"cannot load {path}: {exc}",
                           "copy the cluster's ca.crt there, or fix certificate-authority "
                           "(peapod config set-cluster NAME --certificate-authority FILE)")
    if not certs:
        return CheckResult("cluster CA", "fail", f"{path} holds no CA certificate", ROTATE_FIX)
    soonest = min(certs, key=lambda c: ssl.cert_time_to_seconds(str(c["notAfter"])))
    return judge_expiry("cluster CA", f"the cluster CA {path}", str(soonest["notAfter"]), now)


def check_server_certificate(url: str, ca_file: str, *, now: datetime,
                             timeout: float = 2) -> CheckResult:
    """What a client sees: NATS's INFO, then a TLS handshake verified against the CA."""
    host, port = first_server(url)
    name, where = "server certificate", f"{host}:{port}"
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        return CheckResult(name, "fail", f"not checked: cannot load {ca_file}: {exc}", ROTATE_FIX)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            info = _read_info(sock)
            if not info.get("tls_required"):  # the CLI refuses such a server: see cli.client
                return CheckResult(name, "fail", f"{where} does not require TLS",
                                   "enable TLS on the server (re-run the playbook)")
            with context.wrap_socket(sock, server_hostname=host) as tls:
                cert = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        expired = exc.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED
        return CheckResult(name, "fail", f"{where} does not verify against {ca_file}: "
                           f"{exc.verify_message}", ROTATE_FIX if expired else
                           f"{ROTATE_FIX}, or set the cluster's CA (peapod config set-cluster "
                           "NAME --certificate-authority FILE)")
    except ssl.SSLError as exc:
        return CheckResult(name, "fail", f"TLS handshake with {where} failed: {exc.reason or exc}",
                           ROTATE_FIX)
    except (OSError, ValueError) as exc:
        return CheckResult(name, "warn", f"not checked: {where} unreachable: {exc}",
                           "start the cluster first")
    return judge_expiry(name, where, str(cert.get("notAfter", "")), now)


def check_components(home: Path) -> list[CheckResult]:
    """What ``peapod up`` started here, from ``pids.json`` and each process's liveness.

    Nothing to say where ``peapod up`` never ran (a fleet's node, say).
    """
    from peapod.cli.supervisor import COMPONENTS, SUPERVISOR, read_pids, running

    if not read_pids(home):
        return []
    alive = running(home)
    down = [name for name in COMPONENTS if name not in alive]
    logs = home / "logs"
    if SUPERVISOR in alive and not down:
        return [CheckResult("components", "ok", f"{', '.join(COMPONENTS)} running, supervised by "
                            f"peapod up (pid {alive[SUPERVISOR]})")]
    if SUPERVISOR in alive:
        return [CheckResult("components", "fail", f"{', '.join(down)} down: peapod up "
                            f"(pid {alive[SUPERVISOR]}) restarts it with back-off (1 s to 30 s)",
                            f"if it stays down, see {logs}/{down[0]}.log")]
    if any(name in alive for name in COMPONENTS):
        return [CheckResult("components", "fail", "peapod up's supervisor is not running, so "
                            "nothing restarts a component that stops"
                            + (f"; {', '.join(down)} down" if down else ""),
                            f"peapod down, then peapod up (see {logs}/supervisor.log)")]
    return [CheckResult("components", "fail", f"peapod up is not running: {', '.join(COMPONENTS)} "
                        f"are down ({home / 'pids.json'} is from an earlier run)", "peapod up")]


def run_checks(*, nats_url: str | None, podman_socket: str, containers_conf: str | None,
               ca_file: str | None = None, no_cluster: str | None = None,
               now: datetime | None = None, peapod_home: Path | None = None) -> list[CheckResult]:
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
        check_nats(nats_url, no_cluster=no_cluster),
        *_tls_checks(nats_url, ca_file, now or datetime.now(UTC)),
        *(check_components(peapod_home) if peapod_home is not None else []),
    ]


def _tls_checks(url: str | None, ca_file: str | None, now: datetime) -> list[CheckResult]:
    if not url or not ca_file:
        return []  # a plaintext cluster (`peapod up`'s, on loopback): nothing to expire
    return [check_ca_file(ca_file, now=now), check_server_certificate(url, ca_file, now=now)]


TAGS = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}


def format_results(results: list[CheckResult]) -> str:
    lines = []
    for result in results:
        line = f"{TAGS[result.status]} {result.name}: {result.detail}"
        lines.append(f"{line} -> fix: {result.fix}" if result.fix and result.status != "ok" else line)
    return "\n".join(lines)


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.status == "fail" for r in results) else 0
