"""How the kubelet measures an emptyDir against its sizeLimit (real files in tmp_path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from peapod.api import Pod
from peapod.kubelet.volumes import limited_empty_dirs, usage_bytes


def du_bytes(path: Path) -> int:
    """What `du -s -B1` says: the reference usage_bytes follows."""
    return int(subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def test_usage_counts_allocated_blocks_as_du_does(tmp_path: Path) -> None:
    volume = tmp_path / "cache"
    (volume / "a" / "b").mkdir(parents=True)
    (volume / "a" / "b" / "big").write_bytes(b"x" * 300_000)
    (volume / "small").write_bytes(b"y")
    os.link(volume / "small", volume / "a" / "same-file")  # one inode, counted once
    (volume / "outside").symlink_to(tmp_path)  # not followed
    (tmp_path / "elsewhere").write_bytes(b"z" * 1_000_000)
    with (volume / "sparse").open("wb") as f:  # a hole takes no space
        f.truncate(50_000_000)
    measured = usage_bytes(volume)
    top = os.stat(volume).st_blocks * 512  # du counts the directory itself; we count its content
    assert measured == du_bytes(volume) - top
    assert 300_000 <= measured < 1_000_000


def test_a_missing_directory_uses_nothing(tmp_path: Path) -> None:
    assert usage_bytes(tmp_path / "gone") == 0


def test_only_empty_dirs_with_a_positive_size_limit_are_measured() -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "i:1"}],
        "volumes": [{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    {"name": "disk", "emptyDir": {"sizeLimit": "2k"}},
                    {"name": "zero", "emptyDir": {"sizeLimit": "0"}},
                    {"name": "free", "emptyDir": {}},
                    {"name": "host", "hostPath": {"path": "/tmp"}}]}})
    assert [(v.name, limit) for v, limit in limited_empty_dirs(pod)] == [
        ("mem", 1024 * 1024), ("disk", 2000)]
