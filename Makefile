# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-unit test-integration test-oldest test-sdk-lines test-pythons coverage lint typecheck check bench bench-instructions bench-bytecodes clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(UV) pip install -q --python $(PY) -e '.[all]' --group dev --group bench
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ai-tokentrace demo

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

# The suite against the oldest openai / google-genai releases we support, in a venv of its own.
OLDEST_VENV := .venv-oldest
test-oldest:
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade uv
	$(OLDEST_VENV)/bin/uv pip install -q --python $(OLDEST_VENV)/bin/python -e . --group test \
		-r tests/oldest-requirements.txt
	$(OLDEST_VENV)/bin/python -m pytest tests/integrations $(PYTEST_ARGS)

# The integration suite on each older major line's last SDK releases (tests/sdk-lines/*.txt).
test-sdk-lines:
	PYTEST_ARGS="$(PYTEST_ARGS)" bash scripts/test-sdk-lines.sh $(LINES)

# The whole suite on each other supported CPython found here (3.10, 3.12, 3.13, 3.14), in
# .venv-3.X; one not on the machine is named and skipped. VERSIONS='3.13' for one of them.
test-pythons:
	PYTEST_ARGS="$(PYTEST_ARGS)" bash scripts/test-pythons.sh $(VERSIONS)

# The whole suite under coverage (branches too), then what it leaves unrun.
coverage: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(PY) -m coverage run -m pytest $(PYTEST_ARGS)
	$(PY) -m coverage report

lint: $(STAMP)
	$(VENV)/bin/ruff check ai_tokentrace tests bench
	$(VENV)/bin/ruff format --check ai_tokentrace tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/pipeline.py
	$(PY) bench/overhead.py
	$(PY) bench/report.py
	$(PY) bench/pricing.py

# Instructions per call under cachegrind (Debian's valgrind): for comparing two versions of our
# code, which wall-clock figures on a shared machine cannot tell apart. Slow (~30 s a run).
bench-instructions: $(STAMP)
	$(PY) bench/instructions.py $(ARGS)

# Our bytecodes per call, by function (--lines: by line): where the added work is, in seconds.
bench-bytecodes: $(STAMP)
	$(PY) bench/bytecodes.py $(ARGS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .venv-3.* .venv-sdk-* .pytest_cache .mypy_cache .ruff_cache
