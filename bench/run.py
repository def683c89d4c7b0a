"""peapod's benchmarks: the real cluster that `peapod up` starts, measured from outside.

Run with `make bench`. It starts a private cluster (nats-server, apiserver,
scheduler, one kubelet on podman) in a temporary PEAPOD_HOME, then measures:

- API round trips over NATS (create, get, list of N pods) as seen by the CLI's client;
- API round trips use pods whose nodeSelector matches no node, so they stay
  Pending and nothing starts in podman;
- scheduling: from creating N pods back to back to every one being bound, then
  Running, then gone after delete;
- apply to Running for real podman pods, one at a time, and delete to gone;
- resident memory of each component afterwards (VmRSS and VmHWM from /proc).

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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from peapod.api import Pod
from peapod.cli.client import Client
from peapod.cli.context import load_context
from peapod.cli.doctor import SHIPPED_CONF

ROOT = Path(__file__).resolve().parent.parent
NODE = "bench-node"
MARK = "<!-- bench:latest -->"


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


async def apply_to_running(client: Client, n: int) -> list[str]:
    start, stop = [], []
    for i in range(n):
        name = f"one-{i}"
        t = time.perf_counter()
        await client.create(pod(name))

        async def running(name: str = name) -> bool:
            p = await client.get_pod(name)
            return bool(p.status and p.status.phase == "Running")

        await wait_until(running, timeout=120)
        start.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = await client.delete_pod(name, grace=0)
        await client.wait_deleted(name, result["object"]["metadata"]["uid"], timeout=120)
        stop.append(time.perf_counter() - t)
    return [f"| apply to Running (one busybox pod, podman) | {n} | {ms(start)} |",
            f"| delete (grace 0) until the object is gone | {n} | {ms(stop)} |"]


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


def memory(home: Path) -> list[str]:
    pids = json.loads((home / "pids.json").read_text())
    rows = []
    for name, pid in pids.items():
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        rss, hwm = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        rows.append(f"| {name} | {rss:.1f} MiB | {hwm:.1f} MiB |")
    return rows


async def measure(home: Path, args: argparse.Namespace) -> list[str]:
    client = await Client.open(load_context("local", path=home / "config"))  # what `up` wrote
    try:
        api = await api_round_trips(client, args.api_pods)
        one = await apply_to_running(client, args.e2e_pods)
        sched = await scheduling(client, args.sched_pods)
    finally:
        await client.close()
    return [*api, *one, *sched]


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
    parser.add_argument("--e2e-pods", type=int, default=5)
    parser.add_argument("--sched-pods", type=int, default=20)
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
            rows = [*asyncio.run(measure(home, args)), *cli_wall_time(peapod, env),
                    *podman_baseline(args.e2e_pods)]
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
