"""``peapod doctor`` against this machine: real podman, real cgroups, a real nats-server.

Bad configurations are written as temporary containers.conf files rather than
mocked, so each failing case is one the doctor would meet on a real node.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from peapod.cli import doctor
from peapod.kubelet.runtime import ensure_podman_service
from tests.natsd import NATSD, free_port

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_CONF = ROOT / "deploy" / "podman" / "containers.conf"
MOUNTS = Path("/proc/mounts").read_text()
LAYOUT = doctor.cgroup_layout(MOUNTS)


def write_conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "containers.conf"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our own ``podman system service`` on a temporary socket, stopped afterwards."""
    path = str(tmp_path_factory.mktemp("podman") / "podman.sock")
    service = ensure_podman_service(path, containers_conf=str(SHIPPED_CONF), timeout=20)
    assert service is not None, "nothing else can be serving a fresh temporary socket"
    try:
        yield path
    finally:
        service.terminate()
        service.wait(10)


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    port, http_port = free_port(), free_port()
    config = tmp_path / "nats.conf"
    config.write_text(f"port: {port}\nhttp_port: {http_port}\n")
    server = NATSD(config, http_port)
    server.start()
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.stop()


def test_podman_is_installed_and_reports_its_version() -> None:
    result = doctor.check_podman()
    assert result.status == "ok", result
    assert result.detail[0].isdigit()


def test_shipped_containers_conf_is_in_effect() -> None:
    assert doctor.check_containers_conf(str(SHIPPED_CONF)).status == "ok"


def test_missing_containers_conf_fails_naming_the_file(tmp_path: Path) -> None:
    result = doctor.check_containers_conf(str(tmp_path / "nope.conf"))
    assert result.status == "fail"
    assert "nope.conf" in result.detail and "CONTAINERS_CONF" in result.fix


def test_shipped_runtime_is_installed_and_fits_the_cgroup_layout() -> None:
    conf, _ = doctor.read_containers_conf(str(SHIPPED_CONF))
    result = doctor.check_oci_runtime(conf, LAYOUT)
    assert result.status == "ok", result
    assert result.detail.startswith("runc")


@pytest.mark.skipif(LAYOUT == "unified", reason="pure cgroup v2 machine: crun works here")
def test_crun_fails_on_hybrid_cgroups(tmp_path: Path) -> None:
    conf, _ = doctor.read_containers_conf(write_conf(tmp_path, '[engine]\nruntime = "crun"\n'))
    result = doctor.check_oci_runtime(conf, LAYOUT)
    assert result.status == "fail"
    assert f"crun cannot run on {LAYOUT} cgroups" in result.detail
    assert 'runtime = "runc"' in result.fix


def test_uninstalled_runtime_fails_with_install_fix(tmp_path: Path) -> None:
    conf, _ = doctor.read_containers_conf(write_conf(tmp_path, '[engine]\nruntime = "no-such-runtime"\n'))
    result = doctor.check_oci_runtime(conf, LAYOUT)
    assert result.status == "fail"
    assert result.fix == "apt-get install no-such-runtime"


def test_cgroup_layout_is_read_from_the_mounts() -> None:
    assert doctor.cgroup_layout("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == "unified"
    assert doctor.cgroup_layout("tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
                                "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n") == "hybrid"
    assert doctor.cgroup_layout("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n") == "legacy"


def test_catatonit_is_found() -> None:
    assert doctor.check_catatonit().status == "ok"


def test_cgroup_controllers_include_cpu_memory_and_pids() -> None:
    result = doctor.check_cgroup_controllers(MOUNTS)
    assert result.status == "ok", result
    assert "memory" in result.detail


def test_shipped_ulimits_fit_under_the_hosts() -> None:
    conf, _ = doctor.read_containers_conf(str(SHIPPED_CONF))
    assert doctor.check_rlimits(conf).status == "ok"


def test_ulimits_above_the_hosts_fail_naming_the_limit(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("host nofile is unlimited: no container limit can exceed it")
    path = write_conf(tmp_path, f'[containers]\ndefault_ulimits = ["nofile={hard + 1}:{hard + 1}"]\n')
    conf, _ = doctor.read_containers_conf(path)
    result = doctor.check_rlimits(conf)
    assert result.status == "fail"
    assert f"nofile={hard + 1}:{hard + 1}" in result.detail and str(hard) in result.detail
    assert "default_ulimits" in result.fix


def test_missing_ulimits_warn_when_podmans_default_is_too_high(tmp_path: Path) -> None:
    hosts = [resource.getrlimit(r)[1] for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC)]
    if all(h == resource.RLIM_INFINITY or h >= doctor.PODMAN_DEFAULT_RLIMIT for h in hosts):
        pytest.skip("host limits are at least podman's default")
    conf, _ = doctor.read_containers_conf(write_conf(tmp_path, '[engine]\nruntime = "runc"\n'))
    assert doctor.check_rlimits(conf).status == "warn"


def test_parse_ulimit_reads_soft_hard_and_single_values() -> None:
    assert doctor.parse_ulimit("nofile=1024:4096") == ("nofile", 1024, 4096)
    assert doctor.parse_ulimit("nproc=512") == ("nproc", 512, 512)
    assert doctor.parse_ulimit("nofile=-1:-1") == ("nofile", math.inf, math.inf)


def test_podman_socket_that_does_not_exist_warns_with_how_to_start_it(tmp_path: Path) -> None:
    result = doctor.check_podman_socket(str(tmp_path / "none.sock"))
    assert result.status == "warn"
    assert "podman system service" in result.fix


@pytest.mark.podman
def test_podman_socket_answers_ping(podman_socket: str) -> None:
    result = doctor.check_podman_socket(podman_socket)
    assert result.status == "ok", result
    assert "API" in result.detail


def test_no_cluster_configured_warns() -> None:
    result = doctor.check_nats(None)
    assert result.status == "warn"
    assert "peapod up" in result.fix


def test_nats_on_a_closed_port_fails_with_a_fix() -> None:
    result = doctor.check_nats(f"nats://127.0.0.1:{free_port()}", timeout=1)
    assert result.status == "fail"
    assert "unreachable" in result.detail and result.fix


def test_real_nats_server_answers_with_its_version(nats_url: str) -> None:
    result = doctor.check_nats(nats_url)
    assert result.status == "ok", result
    assert result.detail.startswith("nats-server 2.")


@pytest.mark.podman
def test_this_machine_passes_every_check(podman_socket: str, nats_url: str) -> None:
    results = doctor.run_checks(nats_url=nats_url, podman_socket=podman_socket,
                                containers_conf=str(SHIPPED_CONF))
    assert [r for r in results if r.status != "ok"] == []
    assert doctor.exit_code(results) == 0
    assert doctor.format_results(results).splitlines()[0].startswith("[ok]   podman: ")


def test_a_failure_sets_the_exit_code_and_prints_its_fix() -> None:
    results = [doctor.CheckResult("nats", "warn", "no cluster configured", "run `peapod up`"),
               doctor.CheckResult("oci runtime", "fail", "crun cannot run on hybrid cgroups", "use runc")]
    assert doctor.exit_code(results[:1]) == 0
    assert doctor.exit_code(results) == 1
    assert doctor.format_results(results).splitlines() == [
        "[warn] nats: no cluster configured -> fix: run `peapod up`",
        "[FAIL] oci runtime: crun cannot run on hybrid cgroups -> fix: use runc",
    ]


@pytest.mark.parametrize(("not_after", "status", "detail"), [
    ("Jun 30 12:00:00 2024 GMT", "ok", "certificate of 10.0.0.2:4222 valid until "
                                       "Jun 30 12:00:00 2024 GMT (60 days)"),
    ("May 31 12:00:00 2024 GMT", "ok", "certificate of 10.0.0.2:4222 valid until "
                                       "May 31 12:00:00 2024 GMT (30 days)"),
    ("May 31 11:59:59 2024 GMT", "warn", "certificate of 10.0.0.2:4222 expires in 29 days "
                                         "(May 31 11:59:59 2024 GMT)"),
    ("May  1 12:00:01 2024 GMT", "warn", "certificate of 10.0.0.2:4222 expires in 0 days "
                                         "(May  1 12:00:01 2024 GMT)"),
    ("Apr 21 12:00:00 2024 GMT", "fail", "certificate of 10.0.0.2:4222 expired 10 days ago "
                                         "(Apr 21 12:00:00 2024 GMT)"),
    ("May  1 11:00:00 2024 GMT", "fail", "certificate of 10.0.0.2:4222 expired 1 day ago "
                                         "(May  1 11:00:00 2024 GMT)"),
])
def test_certificate_expiry_warns_30_days_ahead_and_fails_once_past(not_after, status, detail) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    result = doctor.judge_expiry("server certificate", "10.0.0.2:4222", not_after, now)
    assert (result.status, result.detail) == (status, detail)
    assert result.fix == ("" if status == "ok" else "re-run the playbook to rotate it")


def test_a_plaintext_cluster_has_no_certificate_checks() -> None:
    assert doctor._tls_checks("nats://127.0.0.1:4222", None, datetime.now(UTC)) == []
