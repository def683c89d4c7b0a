"""kubernetes.io/arch: Go's names for the machine, as Kubernetes' kubelets label their nodes."""

from __future__ import annotations

import pytest

from peapod.kubelet.node import architecture


@pytest.mark.parametrize(("machine", "pointer_bytes", "arch"), [
    ("x86_64", 8, "amd64"),
    ("aarch64", 8, "arm64"),
    ("armv7l", 4, "arm"),  # 32-bit Raspberry Pi OS on a 32-bit kernel (and qemu-arm)
    ("aarch64", 4, "arm"),  # 32-bit Raspberry Pi OS on a Pi 4/5's 64-bit kernel
    ("armv8l", 4, "arm"),  # the same under a linux32 personality
    ("armv6l", 4, "arm"),
    ("x86_64", 4, "386"),
    ("riscv64", 8, "riscv64"),
])
def test_uname_machine_and_userland_give_goarch(machine: str, pointer_bytes: int, arch: str) -> None:
    assert architecture(machine, pointer_bytes) == arch


def test_this_machine_is_named_as_go_names_it() -> None:
    assert architecture() in ("amd64", "arm64", "arm")
