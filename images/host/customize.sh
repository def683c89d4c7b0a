#!/usr/bin/env bash
# mmdebstrap --customize-hook for the simulated fleet hosts: $1 is the root
# filesystem, with images/host/overlay already synced in. Runs on the build
# machine as root; everything here edits files under "$1" only.
set -euo pipefail
root=${1:?usage: customize.sh ROOTFS}

# Units that make no sense in a container, or that would reach the build
# machine's kernel or the internet from inside a privileged container:
# consoles and first-boot prompts (no tty); waiting for links podman already
# configured; apt's and podman's update timers (the hosts never reach a
# mirror or a registry); sysctl and binfmt_misc (global kernel knobs: a
# privileged container would change them for the whole machine); kernel
# audit and debug filesystems (they are the build machine's kernel's).
masked=(
    getty.target getty@.service serial-getty@.service console-getty.service
    systemd-firstboot.service
    systemd-networkd-wait-online.service
    apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
    podman-auto-update.timer podman-auto-update.service
    e2scrub_all.timer e2scrub_reap.service fstrim.timer
    systemd-sysctl.service
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
    systemd-journald-audit.socket
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
    sys-fs-fuse-connections.mount
)
chroot "$root" systemctl mask --quiet "${masked[@]}"
chroot "$root" systemctl enable --quiet peapod-ssh-host-keys.service ssh.service
# The kubelet drives the machine's podman through /run/host-podman.sock; the
# host's own podman has no containers to restart nor clients for its API at
# boot. Disabled rather than masked, so that a role may still enable them.
chroot "$root" systemctl disable --quiet podman-restart.service podman.service

# Each host makes its own identity at boot: SSH host keys (the unit above),
# machine-id (systemd derives it from podman's container_uuid when empty).
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# podman bind-mounts these per container.
rm -f "$root/etc/hostname"

install -d -m 0700 "$root/root/.ssh"


# A foreign image (armhf) runs under qemu-user, where systemd cannot set up a
# unit's credentials ("Failed to set up credentials: Invalid argument": the
# mount calls it makes are not emulated), so units that merely offer to load
# optional credentials fail; none is ever passed to these hosts: drop them.
if [[ "$(chroot "$root" dpkg --print-architecture)" != "$(dpkg --print-architecture)" ]]; then
    for unit in systemd-sysusers systemd-tmpfiles-setup systemd-tmpfiles-setup-dev systemd-tmpfiles-clean; do
        install -d "$root/etc/systemd/system/$unit.service.d"
        printf '# qemu-user cannot set up credentials (images/host/customize.sh)\n[Service]\nLoadCredential=\n' \
            > "$root/etc/systemd/system/$unit.service.d/peapod-qemu.conf"
    done
fi
