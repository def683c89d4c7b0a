#!/usr/bin/env bash
# Build localhost/peapod-host:bookworm, the image of the simulated fleet hosts
# (tests/fleet/hosts.py): a Debian 12 root filesystem that boots systemd and
# sshd, made by mmdebstrap from packages.txt, customize.sh and overlay/.
#
# The tarball is cached in ${XDG_CACHE_HOME:-~/.cache}/peapod/ under a hash of
# everything in images/host/ and the mirrors, and the image carries that hash
# as the label io.peapod.host.hash: an unchanged input neither reaches the
# mirror nor re-imports. The Debian mirror is the only network use.
#
# Usage: images/host/build.sh [--force]
#   DEBIAN_MIRROR          default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR default http://deb.debian.org/debian-security
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=localhost/peapod-host:bookworm
suite=bookworm
force=${1:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
sources=(
    "deb $mirror $suite main"
    "deb $mirror $suite-updates main"
    "deb $security $suite-security main"
)

hash=$( { (cd "$here" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
          printf '%s\n' "${sources[@]}"; } | sha256sum | cut -c1-16)

current=$(podman image inspect --format '{{index .Labels "io.peapod.host.hash"}}' "$image" 2>/dev/null || true)
if [[ "$current" == "$hash" && "$force" != "--force" ]]; then
    echo "images: $image is up to date ($hash)"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null; then
    SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mmdebstrap
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/peapod
mkdir -p "$cache"
tarball=$cache/host-$suite-$hash.tar
exec 9>"$cache/host-$suite.lock"
flock 9
if [[ ! -s "$tarball" || "$force" == "--force" ]]; then
    packages=$(grep -v -e '^\s*#' -e '^\s*$' "$here/packages.txt" | paste -sd, -)
    partial=$(mktemp "$cache/host-$suite-XXXXXX.tar.partial")
    trap 'rm -f "$partial"' EXIT
    # Lists are kept so that Ansible's apt module resolves package names offline.
    mmdebstrap --quiet --variant=apt --include="$packages" --format=tar \
        --skip=cleanup/apt/lists \
        --customize-hook="sync-in $here/overlay /" \
        --customize-hook="$here/customize.sh" \
        "$suite" "$partial" "${sources[@]}"
    mv "$partial" "$tarball"
    find "$cache" -maxdepth 1 -name "host-$suite-*.tar" ! -name "$(basename "$tarball")" -delete
fi

previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman import --quiet \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL io.peapod.host.hash=$hash" \
    "$tarball" "$image" >/dev/null
# The replaced image is left untagged by the import; drop it unless a host still uses it.
[[ -z "$previous" ]] || podman rmi "$previous" >/dev/null 2>&1 || true
echo "images: $image ($hash)"
