# Tuijin: `make run` serves the product with demo data; `make test` runs lint and every test.
# Both install what they need (Python venv, npm packages, Debian's chromium for browser tests).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TUIJIN := $(VENV)/bin/tuijin
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
APT_GET := $(shell if [ "$$(id -u)" = 0 ]; then echo apt-get; else echo sudo apt-get; fi)

.PHONY: run test lint deps system-deps chromium clean bench bench-smoke wrk lock audit

# Dependencies come from requirements.lock (exact versions with hashes, `make lock` writes it from
# pyproject.toml); the project itself is installed on top without resolving anything again.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.lock 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import django, huey, openpyxl, playwright, importlib.util as u; assert u.find_spec('ninja') and u.find_spec('tuijin')"  # fail loudly if the install failed
	touch $@

# Developer tools for the lock (uv) and `make audit` (pip-audit), kept out of the product's venv.
TOOLS_VENV := .venv-tools
LOCK_ARGS ?=

$(TOOLS_VENV)/.installed:
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q "uv>=0.5" "pip-audit>=2.7" 2>&1 | grep -v "^WARNING: Location" || true
	touch $@

# Re-resolve after editing pyproject.toml (keeps existing pins); LOCK_ARGS=--upgrade moves everything to
# the newest allowed versions, LOCK_ARGS="--upgrade-package django" just one.
lock: $(TOOLS_VENV)/.installed
	$(TOOLS_VENV)/bin/uv pip compile -q pyproject.toml --extra test --extra bench --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make lock" -o requirements.lock $(LOCK_ARGS)

# Known vulnerabilities in the locked packages (exit 1); an unreachable database is reported and skipped.
audit: $(TOOLS_VENV)/.installed
	$(TOOLS_VENV)/bin/python tools/dep_audit.py requirements.lock

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

deps: $(VENV)/.installed node_modules/.installed

# Debian packages: chromium (browser tests), Pango/HarfBuzz + Noto CJK (Chinese PDF reports via WeasyPrint),
# poppler-utils (tests read the PDFs back). Installed only when one is missing.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk
TEST_PACKAGES := chromium poppler-utils

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(APT_GET) update -qq && $(APT_GET) install -y -qq $$missing; fi

chromium: system-deps
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then $(APT_GET) update -qq && $(APT_GET) install -y -qq $$missing; fi

run: deps system-deps
	mkdir -p var
	TUIJIN_DEMO=1 $(TUIJIN) migrate --noinput -v0
	TUIJIN_DEMO=1 $(TUIJIN) demo --if-empty
	@echo ""
	@echo "Tuijin is starting on http://127.0.0.1:$(PORT)/  (web + worker; Ctrl-C stops both)"
	@echo "Demo logins (password: $${TUIJIN_DEMO_PASSWORD:-tuijin-demo}):"
	@echo "  admin · director · manager.east (rep.east1, rep.east2) · rep.east1 · rep.east2"
	@echo "  manager.south (rep.south1) · rep.south1 · finance · legal · presales · delivery"
	@echo ""
	TUIJIN_DEMO=1 PORT=$(PORT) $(TUIJIN) run

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/lint-imports --no-cache  # the layers contract in pyproject.toml (docs/architecture.md)

test: deps chromium lint
	@echo "== pytest on SQLite =="
	env -u DATABASE_URL TUIJIN_TESTING=1 $(VENV)/bin/pytest -q
	@url="$${DATABASE_URL:-}"; \
	if [ -z "$$url" ] && $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then url="$(PG_URL)"; fi; \
	if [ -n "$$url" ]; then \
	  echo "== pytest on PostgreSQL ($$url) =="; \
	  DATABASE_URL="$$url" TUIJIN_TESTING=1 $(VENV)/bin/pytest -q; \
	else echo "== no PostgreSQL reachable: skipped the PostgreSQL run =="; fi

# Benchmarks (bench/, docs/benchmarks.md): scales S and M on SQLite by default; BENCH_ARGS adds options,
# e.g. BENCH_ARGS="--database-url postgres://postgres@127.0.0.1:5432/tuijin_bench" for PostgreSQL.
BENCH_SCALES ?= S M
BENCH_ARGS ?=

wrk:
	@command -v wrk >/dev/null 2>&1 || ($(APT_GET) update -qq && $(APT_GET) install -y -qq wrk) || \
	  echo "wrk not installable: the throughput test falls back to Python threads"

bench: deps wrk
	$(PY) -m bench $(foreach s,$(BENCH_SCALES),--scale $(s)) $(BENCH_ARGS)

# The CI smoke run (scale XS on SQLite, no timing assertions); also part of `make test`.
bench-smoke: deps
	env -u DATABASE_URL TUIJIN_TESTING=1 $(VENV)/bin/pytest -q tests/reliability/test_bench_smoke.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) node_modules var
