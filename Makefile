# Two commands matter: `make demo` and `make test`. Both create .venv on a fresh machine and are
# quick the second time: the install re-runs only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# torch is pinned in pyproject (governance[train]) to the CPU wheel on this machine's disk.
DEV_STAMP  := $(VENV)/.stamp-dev
DEMO_STAMP := $(VENV)/.stamp-demo
PYTEST_ARGS ?=

.PHONY: demo test test-gpu bench bench-smoke lint typecheck install install-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(DEMO_STAMP)

install: $(DEMO_STAMP)
install-dev: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/governance demo --out out/demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check governance tests benchmarks
	$(BIN)/ruff format --check governance
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: that must fail, not pass silently.
test: lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-gpu: $(DEV_STAMP)
	$(BIN)/pytest -m gpu $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(PY) -m benchmarks.run

bench-smoke: $(DEV_STAMP)
	$(PY) -m benchmarks.run --smoke

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
