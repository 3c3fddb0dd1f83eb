# Postyard: the one command, and the tests. Run as root on Debian 12 (or Ubuntu).
#   make up      boot the testbed host(s), deploy, verify, print where things are
#   make down    remove them, leaving nothing behind
#   make test    every suite: unit, then a booted testbed (hosts, idempotency, teardown)
#   make test-fast  unit tests only, no hosts
SHELL := /bin/bash
VENV ?= .venv
# sslyze pins an older cryptography than the project's, so it gets a virtualenv of its own.
SSLYZE_VENV ?= .venv-sslyze
PYTHON ?= python3
PY := $(VENV)/bin/python
TARGET ?= testbed
TOPOLOGY ?= single
TESTBED ?= main
# The two session testbeds' suites run side by side, one pytest-xdist worker each (tests/xdist_testbeds.py);
# PARALLEL= runs them in turn in one process.
PARALLEL ?= -n 2 --dist loadscope --no-loadscope-reorder
SYSTEM_PACKAGES := debootstrap systemd-container nftables nmap iproute2 openssh-client \
	python3 python3-venv ca-certificates tar util-linux age postgresql-client redis-tools cryptsetup \
	postgresql-15 redis-server testssl.sh rsync chromium chromium-driver

.PHONY: deps system-deps up down deploy verify status admin test test-fast

NODE_SDK := tests/node

deps: system-deps $(VENV)/.installed $(SSLYZE_VENV)/.installed $(NODE_SDK)/node_modules/.installed

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "==> installing $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'
	touch $@

# Resend's Node SDK for the tests, exactly as package-lock.json pins it (with its integrity hashes); Debian's
# nodejs and npm when the machine has no node.
$(NODE_SDK)/node_modules/.installed: $(NODE_SDK)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends nodejs npm; }
	npm ci --prefix $(NODE_SDK) --no-audit --no-fund
	touch $@

$(SSLYZE_VENV)/.installed: constraints-sslyze.txt
	$(PYTHON) -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/pip install -q -r constraints-sslyze.txt
	touch $@

up: deps
	$(PY) -m postyard up --target $(TARGET) --topology $(TOPOLOGY) --testbed $(TESTBED)

down: deps
	$(PY) -m postyard down --target $(TARGET) --testbed $(TESTBED)

deploy verify backups: deps
	$(PY) -m postyard $@ --target $(TARGET) --testbed $(TESTBED)

# where things are, and each host's failed systemd units (a failed nightly backup among them)
status: deps
	$(PY) -m postyard status --units --target $(TARGET) --testbed $(TESTBED)

# make admin ARGS="teams": an operator command on the API host (docs/operators.md)
admin: deps
	$(PY) -m postyard admin --target $(TARGET) --testbed $(TESTBED) $(ARGS)

test: deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest --testbed $(PARALLEL) -v --durations=60

test-fast: deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest tests/unit
