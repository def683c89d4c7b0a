#!/usr/bin/env bash
# Let this machine run 32-bit ARM (armhf) programs through qemu-user-static,
# for the simulated Raspberry Pi OS (32-bit) host of the fleet test.
#
# binfmt_misc is the kernel's, not a container's: an entry registered here
# serves every process on the machine, inside containers too. So this
# registers the one entry it needs, qemu-arm, and only when it is missing
# (idempotent; an entry someone else registered is left as it is). The line
# is Debian's own (/usr/lib/binfmt.d/qemu-arm.conf from qemu-user-static);
# its F flag opens the interpreter now, so containers need no qemu inside.
# Undo by hand with: echo -1 > /proc/sys/fs/binfmt_misc/qemu-arm
set -euo pipefail
entry=/proc/sys/fs/binfmt_misc/qemu-arm
conf=/usr/lib/binfmt.d/qemu-arm.conf
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
