# Two commands: `make test` and `make demo`. Both build .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench soak soak-ha lint example-db clean fingerprint screenshots dist

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/watchdog check --rules rules --config deploy/watchdog.toml
	$(BIN)/watchdog test-rules rules/tests/
	$(BIN)/python -m pytest -n auto --dist loadfile

# The main job on the embedded default, in two steps. Live: the real daemon (`watchdog run
# --exit-when-idle`) polls local stand-ins of the NY Fed, FRED and Fiscal Data APIs serving
# Oct-Dec 2025 from the example history, records into a temporary copy of the log, evaluates the
# default rules and notifies on the console (Slack too when SLACK_WEBHOOK_URL is set); then it is
# verified, audited, and its status page saved (demo/run.py). Replay: the whole shipped history
# with the default rules. No network otherwise, no secrets; about a minute; outputs in out/.
demo: $(STAMP)
	@mkdir -p out
	$(BIN)/python -m demo.run --out out
	@echo "== replay: the whole shipped history with the default rules"
	$(BIN)/watchdog verify --db events.db.example
	$(BIN)/watchdog replay --db events.db.example --rules rules | tee out/timeline.txt
	$(BIN)/watchdog replay --db events.db.example --rules rules --json > out/alerts.jsonl
	@echo
	@echo "demo outputs:"
	@echo "  live run:  out/notifications.txt (what the daemon sent), out/status.html (its status page),"
	@echo "             out/readyz.json, out/metrics.txt, out/api-alerts.json"
	@echo "  replay:    out/timeline.txt (the alert timeline above), out/alerts.jsonl (replay --json)"
	$(BIN)/watchdog replay --db events.db.example --rules rules --report out/report.html > /dev/null

# PNGs of what people read, rendered by headless Chromium: the replay report of events.db.example
# (default rules, default episodes shaded) and the status page of a daemon over a copy of that log
# (its clock at the log's recording instant). Writes out/screenshots/*.png and prints the paths.
screenshots: $(STAMP)
	$(BIN)/python -m demo.screenshots --out out/screenshots

# The distributions into dist/ (the wheel a desk installs, and the sdist); then
# tests/test_packaging.py builds both again in a temporary directory, installs the wheel into a
# fresh venv (the package registry is the only network) and runs the first commands there. Not in
# `make test`: 20 s here, a minute on a loaded machine. .ci/run runs it.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps -w dist .
	$(BIN)/python -m build --sdist --outdir dist .
	$(BIN)/python -m pytest -p no:xdist -m packaging tests/test_packaging.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py

# Not part of `make test`: 100 SIGKILLs of `watchdog run` against local fakes (a few minutes);
# prints events lost, alerts lost, duplicate notifications; exits 1 on any loss. Then the
# time-travel windows (2025 Q4, 2019-09, 2020-03, all of 2025): the real daemon on a simulated
# clock against replay, one LIVE-REPLAY line each; exits 1 on any unexplained difference.
soak: $(STAMP)
	$(BIN)/python soak/soak.py --kills 100 --slack webhook
	$(BIN)/python soak/soak.py --kills 100 --slack bot
	$(BIN)/python soak/timetravel.py

# Not part of `make test` either (about half an hour): three replicas on one PostgreSQL log (a
# server started for the run), 50 SIGKILLs and SIGSTOPs of whichever leads, with a bot token and
# with a webhook; prints the SOAK-HA line (facts and alerts lost, duplicates, the longest
# takeover); exits 1 on any loss, a bot duplicate, or a takeover of 30 s or more.
soak-ha: $(STAMP)
	$(BIN)/python soak/soak_ha.py --kills 50

# Rebuild the example log from data/history, deterministically (fixed recorded_at): the same
# files always give the same chain head hash (tests/test_example_db.py checks it).
EXAMPLE_RECORDED_AT := 2026-09-05T00:00:00Z
example-db: $(STAMP)
	rm -f events.db.example events.db.example-wal events.db.example-shm
	$(BIN)/watchdog import --db events.db.example --recorded-at $(EXAMPLE_RECORDED_AT) data/history
	@echo "== replay: the whole shipped history with the default rules"
	$(BIN)/watchdog verify --db events.db.example

clean:
	rm -rf $(VENV) build *.egg-info

# What a refactor must not change: sha256 of replay --json, the notification dry run, backtest
# (text and JSON) and audit on the example log, one line each. Run before and after; compare.
fingerprint: $(STAMP)
	@$(BIN)/watchdog replay --db events.db.example --rules rules --json | sha256sum | sed 's/-$$/replay --json/'
	@$(BIN)/watchdog replay --db events.db.example --rules rules --notify-dry-run --json | sha256sum | sed 's/-$$/replay --notify-dry-run --json/'
	@$(BIN)/watchdog backtest --db events.db.example --rules rules | sha256sum | sed 's/-$$/backtest/'
	@$(BIN)/watchdog backtest --db events.db.example --rules rules --json | sha256sum | sed 's/-$$/backtest --json/'
	@$(BIN)/watchdog audit --db events.db.example 2>&1 | sha256sum | sed 's/-$$/audit/'
