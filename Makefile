# The two commands of the README: `make demo` and `make test`. Each creates .venv
# when missing and installs the project into it; nothing else is needed but Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint unit integration faults bench robustness fuzz clean

demo: $(INSTALLED)
	$(BIN)/tokenradar demo

test: lint unit integration

lint: $(INSTALLED)
	$(BIN)/ruff check schemas detectors streams lab tokenradar tests bench
	$(BIN)/mypy -p tokenradar.schemas -p tokenradar.detectors

unit: $(INSTALLED)
	$(BIN)/pytest -q tests/unit --doctest-modules tokenradar \
		--ignore=tokenradar/__main__.py

integration: $(INSTALLED)
	$(BIN)/pytest -q tests/integration -m "not faults"

# Faults on a real broker (about 4 minutes): a worker killed, stopped and restarted,
# joined and left; the broker frozen, or not there yet. .ci/run calls it after `make test`.
faults: $(INSTALLED)
	$(BIN)/pytest -q tests/integration -m faults

# Every figure of issue 15 beside its baseline from the same run, as ratios, in one table
# (about 15 minutes; ARGS=--quick for a smoke run; see bench/suite.py).
bench: $(INSTALLED)
	$(BIN)/python bench/suite.py $(ARGS)

# constraints.txt pins every dependency, so each install resolves the same versions.
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) tokenradar-data .pytest_cache .mypy_cache .ruff_cache

# The robustness matrix (a benchmark, not in `make test`): 12 randomised organisations and
# 3 held out, judged by the worst. ARGS=--quick for small ones; see bench/robustness.py.
robustness: $(INSTALLED)
	$(BIN)/python bench/robustness.py $(ARGS)

# The fuzz run (a benchmark, not in `make test`; tests/integration/test_hostile_input.py
# runs a shorter one): 10,000 hostile messages through a real worker, see bench/fuzz.py.
fuzz: $(INSTALLED)
	$(BIN)/python bench/fuzz.py $(ARGS)
