# berth — set up, demo and test on Debian 12 as root.
#   make demo   install everything, start berthd, serve a web page from a container on port 8080
#   make test   install everything, run the whole test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOCK ?= /run/berth/berth.sock
DEMO_LOG ?= /var/log/berthd-demo.log
DEMO_PORT ?= 8080
# Debian packages the daemon and the tests need (docker-registry, htpasswd and skopeo for the registry tests).
APT_PACKAGES := python3 python3-venv python3-pip runc crun tini busybox-static iproute2 ca-certificates curl procps kmod \
  docker-registry apache2-utils skopeo umoci iptables wrk

.PHONY: setup system-packages demo test lint stop-demo bench

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@modprobe overlay 2>/dev/null || true

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -m compileall -q cli supervisor store migrations >/dev/null
	touch $@

demo: setup
	@if ! $(BIN)/berth -H unix://$(SOCK) version >/dev/null 2>&1; then \
	  echo "starting berthd (log: $(DEMO_LOG))"; \
	  nohup $(BIN)/berthd -H unix://$(SOCK) --pidfile /run/berth/berthd.pid >>$(DEMO_LOG) 2>&1 & \
	  for i in $$(seq 50); do [ -S $(SOCK) ] && break; sleep 0.1; done; \
	fi
	$(BIN)/python deploy/mkbusybox - | $(BIN)/berth -H unix://$(SOCK) import - busybox:latest
	@$(BIN)/berth -H unix://$(SOCK) rm -f demo >/dev/null 2>&1 || true
	$(BIN)/berth -H unix://$(SOCK) run -d --name demo --restart always -p $(DEMO_PORT):80 busybox \
	  sh -c 'mkdir -p /www && echo "hello from a berth container ($$(hostname))" > /www/index.html && exec httpd -f -p 80 -h /www'
	$(BIN)/berth -H unix://$(SOCK) ps
	$(BIN)/berth -H unix://$(SOCK) port demo
	@for i in $$(seq 100); do curl -fsS http://127.0.0.1:$(DEMO_PORT)/ 2>/dev/null && exit 0; sleep 0.1; done; \
	  echo "nothing answers on port $(DEMO_PORT)" >&2; exit 1
	@echo "berthd keeps running (socket $(SOCK)); 'make stop-demo' stops it."

stop-demo:
	-@kill $$(cat /run/berth/berthd.pid) 2>/dev/null; true

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python tests/bench/bench_run.py
	$(BIN)/python tests/bench/bench_images.py
	$(BIN)/python -m tests.bench.bench_proxy 100 5
	$(BIN)/python -m tests.bench.bench_net
	$(BIN)/python -m tests.bench.bench_exec
	$(BIN)/python -m tests.bench.bench_ops
