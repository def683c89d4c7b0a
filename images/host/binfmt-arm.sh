#!/usr/bin/env bash
# Let this machine run ARM programs through qemu-user-static, for the
# simulated Raspberry Pi OS hosts of the fleet test: 32-bit (armhf, qemu-arm)
# or 64-bit (arm64, qemu-aarch64).
#
# binfmt_misc is the kernel's, not a container's: an entry registered here
# serves every process on the machine, inside containers too. So this
# registers the one entry it is asked for, and only when it is missing
# (idempotent; an entry someone else registered is left as it is). The line
# is Debian's own (/usr/lib/binfmt.d/qemu-<name>.conf from qemu-user-static);
# its F flag opens the interpreter now, so containers need no qemu inside.
# Undo by hand with: echo -1 > /proc/sys/fs/binfmt_misc/qemu-arm (or qemu-aarch64)
#
# Usage: images/host/binfmt-arm.sh [armhf|arm64]   (a Debian architecture; armhf by default)
set -euo pipefail
case ${1:-armhf} in
    armhf) name=qemu-arm ;;
    arm64) name=qemu-aarch64 ;;
    *) echo "binfmt: $1: only armhf and arm64" >&2; exit 2 ;;
esac
entry=/proc/sys/fs/binfmt_misc/$name
conf=/usr/lib/binfmt.d/$name.conf
SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )

if [[ ! -e $conf ]]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-user-static
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e $entry ]]; then
    grep -v '^\s*#' "$conf" | $SUDO tee /proc/sys/fs/binfmt_misc/register >/dev/null
fi
if ! grep -qx enabled "$entry"; then
    echo "binfmt: $entry is registered but disabled: echo 1 > $entry" >&2
    exit 1
fi
