# Everything a newcomer needs: `make run` (the product on SQLite, Celery eager, mail in var/mail/)
# and `make test` (the whole suite). Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# A 3.12+ interpreter: $(PYTHON) if given, else the newest python3.1x on PATH, else pyenv's.
PYTHON ?= $(shell for c in python3.14 python3.13 python3.12 python3 \
	$$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -Vr); do \
	command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { command -v $$c; break; }; done)

.PHONY: help install install-dev npm run test lint audit worker beat smtpd bouncesmtpd bench demo clean

help:
	@echo "make run     install, migrate, load demo data and serve on http://127.0.0.1:8000"
	@echo "make test    install and run the whole test suite"
	@echo "make lint    ruff and the import contracts (the architecture)"
	@echo "make audit   known vulnerabilities in the locked dependencies (pip-audit), risky code (bandit)"
	@echo "make worker  a Celery worker (needs REDIS_URL)   make beat  Celery beat"
	@echo "make smtpd   SMTP submission   make bouncesmtpd  the bounce listener (needs BOUNCE_DOMAIN)"
	@echo "make bench   benchmarks (needs DATABASE_URL to PostgreSQL); figures go to docs/benchmarks.md"

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
		echo "No Python 3.12 or newer found (looked on PATH and under ~/.pyenv/versions)."; \
		echo "Install Python 3.12+ or run: make PYTHON=/path/to/python3.12 ..."; exit 1; fi
	@echo "Using $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(PY) requirements.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	@touch $@

$(VENV)/.installed-dev: $(PY) requirements-dev.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	@touch $@ $(VENV)/.installed

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(VENV)/.installed node_modules/.package-lock.json
install-dev: $(VENV)/.installed-dev node_modules/.package-lock.json
npm: node_modules/.package-lock.json

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo

run: demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# pip-audit asks a vulnerability service on the network about each locked version (--disable-pip: the
# hashed lock is already resolved, nothing is installed). Found vulnerabilities always fail. When the
# service cannot answer (no network, or an index that does not serve it), the audit says so loudly and
# does not fail: nothing was audited, and nothing was found either.
PIP_AUDIT ?= $(BIN)/pip-audit --strict --require-hashes --disable-pip -r requirements.lock
UNREACHABLE := could not be audited|network may be blocking|ConnectionError|ProxyError|NameResolutionError|Max retries exceeded|timed out

audit: install-dev
	@log=$$(mktemp); $(PIP_AUDIT) >$$log 2>&1; status=$$?; cat $$log; \
	if [ $$status -ne 0 ] && ! grep -qE "Found [0-9]+ known vulnerabilit" $$log && grep -qE "$(UNREACHABLE)" $$log; then \
		echo "pip-audit: the vulnerability service could not answer from here; the dependencies were NOT audited."; \
		status=0; fi; \
	rm -f $$log; exit $$status
	$(BIN)/bandit -q -r accounts mailing reseller -c pyproject.toml

worker: install
	$(BIN)/celery -A reseller worker --loglevel=info

beat: install
	$(BIN)/celery -A reseller beat --loglevel=info --schedule var/celerybeat-schedule

smtpd: install
	$(PY) manage.py smtpd

bouncesmtpd: install
	$(PY) manage.py bouncesmtpd

bench: install-dev
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules var staticfiles
