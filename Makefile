# Two commands: `make test` and `make demo`. Both build .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench soak lint example-db clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m watchdog demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

soak: $(STAMP)
	@echo "no soak tests yet (kill loops arrive with the daemon issue)"

example-db: $(STAMP)
	$(BIN)/python -m watchdog build-example --out events.db.example

clean:
	rm -rf $(VENV) build *.egg-info
