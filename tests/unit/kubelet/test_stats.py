"""The arithmetic of ``peapod top``'s numbers: /proc parsing and rates from two samples."""

from __future__ import annotations

from pathlib import Path

from peapod.kubelet.stats import (
    CpuTimes,
    container_nanocores,
    node_nanocores,
    read_cpu_times,
    read_memory_working_set,
)


def test_proc_stat_and_meminfo(tmp_path: Path):
    (tmp_path / "stat").write_text("cpu  100 10 50 800 40 0 0 0 0 0\ncpu0 50 5 25 400 20 0 0 0\n")
    (tmp_path / "meminfo").write_text("MemTotal:  2048 kB\nMemFree: 512 kB\nMemAvailable: 1024 kB\n")
    assert read_cpu_times(tmp_path) == CpuTimes(busy=160, total=1000)
    assert read_memory_working_set(tmp_path) == 1024 * 1024


def test_rates():
    # 50 of 200 jiffies busy on 4 CPUs: one core
    assert node_nanocores(CpuTimes(100, 1000), CpuTimes(150, 1200), 4) == 1_000_000_000
    assert node_nanocores(CpuTimes(1, 1), CpuTimes(1, 1), 4) == 0
    first = {"CPUNano": 1_000_000_000, "SystemNano": 5_000_000_000}
    second = {"CPUNano": 1_250_000_000, "SystemNano": 6_000_000_000}
    assert container_nanocores(first, second) == 250_000_000  # 250m
    assert container_nanocores(second, first) == 0
