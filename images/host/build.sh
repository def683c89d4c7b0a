#!/usr/bin/env bash
# Build localhost/peapod-host:bookworm, the image of the simulated fleet hosts
# (tests/fleet/hosts.py): a Debian 12 root filesystem that boots systemd and
# sshd, made by mmdebstrap from packages.txt, customize.sh and overlay/.
#
# PEAPOD_HOST_ARCH=armhf builds localhost/peapod-host:bookworm-armhf instead: the
# same system for 32-bit ARM, as on a Raspberry Pi running 32-bit Raspberry Pi
# OS; PEAPOD_HOST_ARCH=arm64 builds localhost/peapod-host:bookworm-arm64, as on
# a Pi 4 or 5 running 64-bit Raspberry Pi OS (or an ARM VM). Their programs run
# under qemu-user-static through binfmt_misc, which binfmt-arm.sh sets up (one
# kernel-wide entry per architecture, qemu-arm or qemu-aarch64; see there).
#
# The tarball is cached in ${XDG_CACHE_HOME:-~/.cache}/peapod/ under a hash of
# everything in images/host/ and the mirrors, and the image carries that hash
# as the label io.peapod.host.hash: an unchanged input neither reaches the
# mirror nor re-imports. The Debian mirror is the only network use.
#
# Usage: images/host/build.sh [--force]
#   PEAPOD_HOST_ARCH       a Debian architecture: this machine's (default), armhf or arm64
#   DEBIAN_MIRROR          default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR default http://deb.debian.org/debian-security
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
native=$(dpkg --print-architecture)
arch=${PEAPOD_HOST_ARCH:-$native}
case $arch in
    "$native") tag=$suite ;;
    armhf|arm64) tag=$suite-$arch ;;
    *) echo "images: PEAPOD_HOST_ARCH=$arch: only $native, armhf and arm64 are supported" >&2; exit 2 ;;
esac
image=localhost/peapod-host:$tag
force=${1:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
sources=(
    "deb $mirror $suite main"
    "deb $mirror $suite-updates main"
    "deb $security $suite-security main"
)

hash=$( { (cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
          printf '%s\n' "${sources[@]}" "$arch"; } | sha256sum | cut -c1-16)

# also when the image is up to date: the registration does not survive a reboot
[[ "$arch" == "$native" ]] || "$here/binfmt-arm.sh" "$arch"

current=$(podman image inspect --format '{{index .Labels "io.peapod.host.hash"}}' "$image" 2>/dev/null || true)
if [[ "$current" == "$hash" && "$force" != "--force" ]]; then
    echo "images: $image is up to date ($hash)"
    exit 0
fi

needed=(mmdebstrap)
[[ "$arch" == "$native" ]] || needed+=(arch-test)  # mmdebstrap checks the machine runs $arch with it
missing=$(for p in "${needed[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [[ -n "$missing" ]]; then
    SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/peapod
mkdir -p "$cache"
tarball=$cache/host-$tag-$hash.tar
exec 9>"$cache/host-$tag.lock"
flock 9
if [[ ! -s "$tarball" || "$force" == "--force" ]]; then
    packages=$(grep -v -e '^\s*#' -e '^\s*$' "$here/packages.txt" | paste -sd, -)
    partial=$(mktemp "$cache/host-$tag-XXXXXX.tar.partial")
    trap 'rm -f "$partial"' EXIT
    # Lists are kept so that Ansible's apt module resolves package names offline.
    bootstrap() {
        mmdebstrap --quiet --variant=apt --architectures="$arch" --include="$packages" --format=tar \
            --skip=cleanup/apt/lists \
            --customize-hook="sync-in $here/overlay /" \
            --customize-hook="$here/customize.sh" \
            "$suite" "$partial" "$@"
    }
    # A mirror may serve a security index of one architecture out of step with its
    # InRelease (seen for armhf: "File has unexpected size"). A test host can do
    # without security updates, so a foreign architecture tries once more without
    # them, and says so.
    if ! bootstrap "${sources[@]}"; then
        [[ "$arch" != "$native" ]] || exit 1
        echo "images: WARNING: building $image without $suite-security (its $arch index failed)" >&2
        bootstrap "${sources[@]:0:2}"
    fi
    mv "$partial" "$tarball"
    # older tarballs of this tag only (the hash is 16 hex digits: bookworm's glob skips bookworm-armhf's)
    find "$cache" -maxdepth 1 -name "host-$tag-$(printf '?%.0s' {1..16}).tar" \
        ! -name "$(basename "$tarball")" -delete
fi

previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
platform=()  # podman's (Go's) names for a foreign architecture; this machine's by default
case $arch in
    armhf) platform=(--arch arm --variant v7) ;;
    arm64) platform=(--arch arm64 --variant v8) ;;
esac
podman import --quiet "${platform[@]}" \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL io.peapod.host.hash=$hash" \
    "$tarball" "$image" >/dev/null
# The replaced image is left untagged by the import; drop it unless a host still uses it.
[[ -z "$previous" ]] || podman rmi "$previous" >/dev/null 2>&1 || true
echo "images: $image ($hash)"
