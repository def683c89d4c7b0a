"""peapod's benchmarks: the real cluster that `peapod up` starts, measured from outside.

Run with `make bench`. It starts a private cluster (nats-server, apiserver,
scheduler, one kubelet on podman) in a temporary PEAPOD_HOME, then measures:

- API round trips over NATS (create, get, list of N pods) as seen by the CLI's client;
- API round trips use pods whose nodeSelector matches no node, so they stay
  Pending and nothing starts in podman;
- scheduling: from creating N pods back to back to every one being bound, then
  Running, then gone after delete;
- apply to Running for real podman pods, one at a time, and delete to gone;
- a burst: N pods applied back to back until all are Running, against the floor
  under it measured in the same run: the same pods made directly through
  podman's REST API on the kubelet's socket (pod create, infra start, container
  create, start), one at a time and with several workers;
- idle CPU of the kubelet (and of the podman service with its children: conmon,
  runc exec) over a minute with N Running pods, without probes and with an exec
  liveness and an http readiness probe each at the default 10 s period;
- resident memory of each component afterwards (VmRSS and VmHWM from /proc);
- the edge budget (bench/edge.py): disk writes at idle on the node and the
  control host, the kubelet's idle CPU and memory, and recovery after a
  control-plane outage (`--only-edge` runs this part alone).

Figures are printed as a Markdown section; `--write FILE` replaces the
"Latest run" section of that file (docs/benchmarks.md). The machine is shared,
so each figure is a median/p95 of many samples within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from podman import PodmanClient

from peapod.api import Pod
from peapod.cli.client import Client
from peapod.cli.context import load_context
from peapod.cli.doctor import SHIPPED_CONF
from peapod.kubelet.runtime import podman_service_pid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge import edge_budget  # bench/ is not a package: imported from beside run.py
from procfs import cpu_seconds, status_mib

ROOT = Path(__file__).resolve().parent.parent
NODE = "bench-node"
MARK = "<!-- bench:latest -->"
PODMAN_SOCKET = os.environ.get("PEAPOD_PODMAN_SOCKET", "/run/podman/podman.sock")
BUSYBOX = "localhost/peapod-busybox:latest"


def pod(name: str, *, image: str = "localhost/peapod-busybox:latest", **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            # IfNotPresent: with ":latest" the default is Always, and on these offline
            # machines each start would first wait ~3 s for podman's pull to fail.
            "spec": {"containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}],
                     "terminationGracePeriodSeconds": 2, **spec}}


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


async def wait_until(check, timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise TimeoutError("benchmark condition not met in time")


async def api_round_trips(client: Client, n: int) -> list[str]:
    create, get = [], []
    for i in range(n):
        t = time.perf_counter()
        await client.create(pod(f"api-{i}", nodeSelector={"bench": "nowhere"}))
        create.append(time.perf_counter() - t)
    for i in range(n):
        t = time.perf_counter()
        await client.get_pod(f"api-{i}")
        get.append(time.perf_counter() - t)
    lists = []
    for _ in range(20):
        t = time.perf_counter()
        items = await client.list_pods()
        lists.append(time.perf_counter() - t)
    assert len(items) >= n
    t = time.perf_counter()
    for i in range(n):
        await client.delete_pod(f"api-{i}", grace=0)
    deleted = time.perf_counter() - t
    return [f"| create pod (request/reply, KV write, fan-out) | {n} | {ms(create)} |",
            f"| get pod | {n} | {ms(get)} |",
            f"| list {n} pods | 20 | {ms(lists)} |",
            f"| delete unscheduled pod | {n} | mean {deleted / n * 1000:.1f} ms |"]


async def scheduling(client: Client, n: int) -> list[str]:
    # These pods fit, so the kubelet starts every one of them: keep n modest.
    t = time.perf_counter()
    for i in range(n):
        await client.create(pod(f"sched-{i}"))
    created = time.perf_counter() - t

    def all_pods(predicate: Callable[[Pod], bool]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return sum(map(predicate, await client.list_pods(selector="app=bench"))) >= n
        return check

    await wait_until(all_pods(lambda p: bool(p.spec.node_name)), timeout=300, interval=0.1)
    bound = time.perf_counter() - t
    await wait_until(all_pods(lambda p: bool(p.status and p.status.phase == "Running")),
                     timeout=600, interval=0.5)
    running = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        await client.delete_pod(f"sched-{i}", grace=0)

    async def all_gone() -> bool:
        return not await client.list_pods(selector="app=bench")

    await wait_until(all_gone, timeout=600, interval=0.5)
    gone = time.perf_counter() - t
    return [f"| {n} pods created back to back | 1 | {created:.2f} s |",
            f"| ... all {n} bound by the scheduler | 1 | {bound:.2f} s ({n / bound:.0f} pods/s) |",
            f"| ... all {n} Running in podman | 1 | {running:.1f} s ({running / n:.2f} s per pod) |",
            f"| delete all {n} (grace 0) until the objects are gone | 1 | {gone:.1f} s |"]


async def until_running(client: Client, names: set[str],
                        timeout: float = 600) -> Callable[[], Awaitable[None]]:
    """Subscribe to pod changes now; the returned wait ends once every pod of ``names`` has
    been seen Running (as `peapod get -w` would show it), with no polling interval added."""
    changes = await client.watch("pods")

    async def wait() -> None:
        waiting = set(names)
        async with asyncio.timeout(timeout):
            async for _kind, p in changes:
                if p.metadata.name in waiting and p.status and p.status.phase == "Running":
                    waiting.discard(p.metadata.name)
                    if not waiting:
                        break
        await changes.aclose()

    return wait


async def apply_to_running(client: Client, home: Path, n: int) -> list[str]:
    """One pod at a time, interleaved with the same pod made through podman directly, each
    on an idle podman (the kubelet removes a deleted pod's containers after the object)."""
    start, stop, direct = [], [], []
    for i in range(n):
        name = f"one-{i}"
        running = await until_running(client, {name}, timeout=120)
        t = time.perf_counter()
        await client.create(pod(name))
        await running()
        start.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = await client.delete_pod(name, grace=0)
        await client.wait_deleted(name, result["object"]["metadata"]["uid"], timeout=120)
        stop.append(time.perf_counter() - t)
        await podman_idle(home)
        direct.append(await asyncio.to_thread(direct_api, 1, 1))
    return [f"| apply to Running (one busybox pod, podman) | {n} | {ms(start)} |",
            f"| baseline: the same pod through podman's REST API directly | {n} | {ms(direct)} "
            f"(peapod {statistics.median(start) / statistics.median(direct):.2f}x) |",
            f"| delete (grace 0) until the object is gone | {n} | {ms(stop)} |"]


def direct_api(n: int, workers: int) -> float:
    """Seconds for n busybox pods made straight through podman's REST API (the kubelet's floor).

    Each pod is what the kubelet asks podman for, with the same options: a pod (labels,
    hostname), its infra container started, one container (labels, its termination-message
    file bind-mounted, command as entrypoint) created and started. Pods are removed
    afterwards (not timed).
    """
    api = PodmanClient(base_url=f"unix://{PODMAN_SOCKET}", timeout=120, max_pool_size=32).api
    files = Path(tempfile.mkdtemp(prefix="peapod-bench-direct-"))

    def make(name: str) -> None:
        labels = {"io.peapod.bench": name}
        reply = api.post("/pods/create", data=json.dumps({
            "name": name, "labels": labels, "hostname": name, "portmappings": []}))
        reply.raise_for_status()
        pod_id = str(reply.json()["Id"])
        api.post(f"/pods/{pod_id}/start").raise_for_status()
        message = files / name  # the kubelet's terminationMessagePath file
        message.write_bytes(b"")
        reply = api.post("/containers/create", data=json.dumps({
            "name": f"{name}-c", "image": BUSYBOX, "pod": pod_id, "labels": labels,
            "mounts": [{"type": "bind", "source": str(message),
                        "destination": "/dev/termination-log", "options": ["rbind", "rw"]}],
            "entrypoint": ["sleep", "3600"], "command": []}))
        reply.raise_for_status()
        api.post(f"/containers/{reply.json()['Id']}/start").raise_for_status()

    names = [f"peapod-bench-direct-{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]
    t = time.perf_counter()
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(make, names))
        return time.perf_counter() - t
    finally:
        with ThreadPoolExecutor(8) as pool:  # a failed run still leaves the pods it made
            list(pool.map(lambda name: api.delete(f"/pods/{name}",
                                                  params={"force": True, "timeout": 0}), names))
        shutil.rmtree(files, ignore_errors=True)


async def podman_idle(home: Path, timeout: float = 120) -> None:
    """Wait until the bench kubelet has no podman pod left (deletes finish after the objects go)."""
    kubelet_id = (home / "kubelet" / "kubelet-id").read_text().strip()
    api = PodmanClient(base_url=f"unix://{PODMAN_SOCKET}", timeout=30).api
    flt = json.dumps({"label": [f"io.peapod.kubelet.id={kubelet_id}"]})

    async def idle() -> bool:
        reply = await asyncio.to_thread(api.get, "/pods/json", params={"filters": flt})
        return not reply.json()

    await wait_until(idle, timeout=timeout, interval=0.2)


async def peapod_burst(client: Client, home: Path, n: int) -> float:
    names = [f"burst-{i}" for i in range(n)]
    running = await until_running(client, set(names))
    t = time.perf_counter()
    for name in names:
        await client.create(pod(name))
    await running()
    seconds = time.perf_counter() - t
    for name in names:
        await client.delete_pod(name, grace=0)

    async def all_gone() -> bool:
        return not await client.list_pods(selector="app=bench")

    await wait_until(all_gone, timeout=600, interval=0.2)
    await podman_idle(home)
    return seconds


async def burst(client: Client, home: Path, n: int, *, rounds: int = 3,
                workers: tuple[int, ...] = (1, 4, 8)) -> list[str]:
    """Peapod's burst apply->all Running against the direct API, interleaved in the same run.

    Each round measures every variant once, on an idle podman; the figures are medians.
    """
    await podman_idle(home)
    direct: dict[int, list[float]] = {w: [] for w in workers}
    ours: list[float] = []
    for _ in range(rounds):
        for w in workers:
            direct[w].append(await asyncio.to_thread(direct_api, n, w))
        ours.append(await peapod_burst(client, home, n))
    med = {w: statistics.median(v) for w, v in direct.items()}
    best, peapod_s = min(med.values()), statistics.median(ours)
    fastest = min(med, key=lambda w: med[w])
    # each round's own ratio: a round's two figures share that moment's load
    per_round = statistics.median(o / d for o, d in zip(ours, direct[fastest], strict=True))
    rows = [f"| burst: {n} pods, direct REST API, {w} worker{'s' if w > 1 else ''} | {rounds} | "
            f"median {seconds:.2f} s |" for w, seconds in med.items()]
    return [*rows,
            f"| burst: {n} pods, peapod apply to all Running | {rounds} | median {peapod_s:.2f} s "
            f"({peapod_s / best:.2f}x the best direct figure, median of the rounds' own ratios "
            f"{per_round:.2f}x; {peapod_s / med[workers[0]]:.2f}x direct one at a time) |"]


def cli_wall_time(peapod: list[str], env: dict[str, str], n: int = 10) -> list[str]:
    """What a user waits for: interpreter start, imports, connect, request, print."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([*peapod, "get", "nodes"], env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - t)
    return [f"| `peapod get nodes`, whole process | {n} | {ms(samples)} |"]


def podman_baseline(n: int) -> list[str]:
    """The floor under apply-to-Running: podman alone creating a pod and starting the container."""
    # the podman configuration the kubelet uses (peapod up's default when CONTAINERS_CONF is unset)
    env = {"CONTAINERS_CONF": str(SHIPPED_CONF), **os.environ}
    samples = []
    for i in range(n):
        name = f"peapod-bench-baseline-{i}"
        t = time.perf_counter()
        try:
            subprocess.run(["podman", "run", "-d", "--pod", f"new:{name}", "--name", f"{name}-c",
                            "localhost/peapod-busybox:latest", "sleep", "3600"],
                           check=True, capture_output=True, env=env)
            samples.append(time.perf_counter() - t)
        finally:  # a failed run still leaves the pod it created
            subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", name], capture_output=True, env=env)
    return [f"| baseline: `podman run -d --pod new:…` (same image, podman CLI) | {n} | {ms(samples)} |"]


PROBED = {  # an exec liveness and an http readiness probe, both every 10 s (the default)
    "command": ["sh", "-c", "mkdir -p /www /tmp; echo ok > /www/index.html; touch /tmp/healthy; "
                            "exec httpd -f -p 8080 -h /www"],
    "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 10},
    "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 10},
}


async def idle_cpu(client: Client, home: Path, n: int, *, probed: bool,
                   window: float) -> tuple[float, float | None]:
    """The kubelet's (and podman's) CPU share while n Running pods sit idle for ``window`` s."""
    kubelet = json.loads((home / "pids.json").read_text())["kubelet"]
    service = podman_service_pid(PODMAN_SOCKET)
    names = [f"idle-{'p' if probed else 'n'}-{i}" for i in range(n)]
    for name in names:
        manifest = pod(name)
        if probed:
            manifest["spec"]["containers"][0].update(PROBED)  # type: ignore[index]
        await client.create(manifest)

    async def all_ready() -> bool:
        pods = await client.list_pods(selector="app=bench")
        return sum(all(c.ready for c in (p.status.container_statuses or []))
                   and bool(p.status.container_statuses) for p in pods if p.status) >= n

    await wait_until(all_ready, timeout=600, interval=0.5)
    await asyncio.sleep(15)  # let the starts' work settle
    k0, p0, t0 = cpu_seconds(kubelet), service and cpu_seconds(service, children=True), \
        time.perf_counter()
    await asyncio.sleep(window)
    elapsed = time.perf_counter() - t0
    k_share = (cpu_seconds(kubelet) - k0) / elapsed
    p_share = (cpu_seconds(service, children=True) - p0) / elapsed if service else None
    for name in names:
        await client.delete_pod(name, grace=0)

    async def all_gone() -> bool:
        return not await client.list_pods(selector="app=bench")

    await wait_until(all_gone, timeout=600, interval=0.2)
    await podman_idle(home)
    return k_share, p_share


async def probes_idle(client: Client, home: Path, n: int, window: float = 60) -> list[str]:
    rows = []
    for probed in (False, True):
        kubelet, podman = await idle_cpu(client, home, n, probed=probed, window=window)
        what = "an exec liveness + an http readiness probe each, period 10 s" if probed \
            else "no probes"
        podman_text = f", podman service and its children {podman * 100:.1f} %" \
            if podman is not None else ""
        rows.append(f"| idle CPU, {n} Running pods, {what} | {window:.0f} s | kubelet "
                    f"{kubelet * 100:.2f} % of one core{podman_text} |")
    return rows


def memory(home: Path) -> list[str]:
    pids = json.loads((home / "pids.json").read_text())
    return [f"| {name} | {status_mib(pid, 'VmRSS'):.1f} MiB | {status_mib(pid, 'VmHWM'):.1f} MiB |"
            for name, pid in pids.items()]


async def edge(home: Path, args: argparse.Namespace) -> list[str]:
    return await edge_budget(home, NODE, image=BUSYBOX, socket=PODMAN_SOCKET,
                             pods=args.burst_pods, idle_minutes=args.idle_minutes,
                             outage_minutes=args.outage_minutes)


async def measure(home: Path, args: argparse.Namespace) -> list[str]:
    if args.only_edge:
        return await edge(home, args)
    client = await Client.open(load_context("local", path=home / "config"))  # what `up` wrote
    if args.only_burst or args.only_probes or args.only_apply:
        try:
            if args.only_probes:
                return await probes_idle(client, home, args.burst_pods)
            if args.only_apply:
                return await apply_to_running(client, home, args.e2e_pods)
            return await burst(client, home, args.burst_pods, rounds=args.burst_rounds)
        finally:
            await client.close()
    try:
        api = await api_round_trips(client, args.api_pods)
        one = await apply_to_running(client, home, args.e2e_pods)
        sched = await scheduling(client, args.sched_pods)
        many = await burst(client, home, args.burst_pods, rounds=args.burst_rounds)
        idle = await probes_idle(client, home, args.burst_pods)
    finally:
        await client.close()
    return [*api, *one, *sched, *many, *idle, *await edge(home, args)]


def report(rows: list[str], memory_rows: list[str]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [f"Machine: {os.cpu_count()} x {cpu}, {mem_gib:.0f} GiB RAM, {platform.platform()}, "
             f"Python {platform.python_version()}; run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "", "| what | samples | result |", "|---|---|---|", *rows,
             "", "Resident memory after the run (VmRSS, peak VmHWM):", "",
             "| component | RSS | peak |", "|---|---|---|", *memory_rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api-pods", type=int, default=200)
    parser.add_argument("--e2e-pods", type=int, default=9)
    parser.add_argument("--sched-pods", type=int, default=20)
    parser.add_argument("--burst-pods", type=int, default=20)
    parser.add_argument("--burst-rounds", type=int, default=5,
                        help="rounds of the burst, each peapod's and every direct variant once")
    parser.add_argument("--only-burst", action="store_true",
                        help="measure the burst only (quicker, for kubelet work)")
    parser.add_argument("--only-apply", action="store_true",
                        help="measure apply to Running of one pod at a time only (against the "
                             "direct API, interleaved)")
    parser.add_argument("--only-probes", action="store_true",
                        help="measure the kubelet's idle CPU with and without probes only")
    parser.add_argument("--only-edge", action="store_true",
                        help="measure the edge budget only (disk writes, idle CPU and memory, "
                             "recovery after an outage)")
    parser.add_argument("--idle-minutes", type=float, default=5,
                        help="the window over which idle writes and CPU are counted")
    parser.add_argument("--outage-minutes", type=float, default=10,
                        help="how long the control plane is away")
    parser.add_argument("--write", type=Path, help="replace the latest-run section of this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peapod-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "PEAPOD_HOME": str(home)}
        for name in ("PEAPOD_CONFIG", "PEAPOD_CONTEXT"):  # the private cluster, not the user's
            env.pop(name, None)
        peapod = [str(Path(sys.executable).parent / "peapod")]  # the script users run
        subprocess.run([*peapod, "up", "--detach", "--node-name", NODE], env=env, check=True)
        try:
            rows = asyncio.run(measure(home, args))
            if not (args.only_burst or args.only_probes or args.only_edge or args.only_apply):
                rows += [*cli_wall_time(peapod, env), *podman_baseline(args.e2e_pods)]
            text = report(rows, memory(home))
        finally:
            subprocess.run([*peapod, "down"], env=env, check=False)
    print(text)
    if args.write:
        old = args.write.read_text() if args.write.exists() else ""
        head = old.split(MARK)[0] if MARK in old else old.rstrip("\n") + "\n\n"
        args.write.write_text(f"{head}{MARK}\n## Latest run\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
