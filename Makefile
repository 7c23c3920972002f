# `make demo` and `make test` work on a fresh machine: each creates .venv when it is
# missing and installs the pinned set it needs (requirements/*.txt), then runs.
# On Windows (make from Git Bash or MSYS2, whose sh runs the recipes) the interpreter is
# `python` and a venv keeps it in Scripts\, elsewhere `python3` and bin/.
VENV   := .venv
ifeq ($(OS),Windows_NT)
PYTHON ?= python
PY     := $(VENV)/Scripts/python.exe
else
PYTHON ?= python3
PY     := $(VENV)/bin/python
endif
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test docs bench bench-quick memcheck clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: requirements/run.txt pyproject.toml | $(PY)
	$(PIP) install -q -r requirements/run.txt
	@# offline first (the venv's own setuptools); if that cannot build, pip's isolated build
	$(PIP) install -q --no-deps --no-build-isolation -e . 2>/dev/null || $(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements/dev.txt requirements/run.txt pyproject.toml $(VENV)/.run-installed
	$(PIP) install -q -r requirements/dev.txt
	touch $@

demo: $(VENV)/.run-installed
	$(PY) -m lstmlab demo

# The tests run on up to 4 cores (pytest-xdist), each worker compiling the kernels it uses
# once: more workers would each compile them again for little gain.
test: $(VENV)/.dev-installed
	$(PY) -m pytest -q -n auto --maxprocesses 4

# The API reference from the docstrings (docs/api): warnings are errors; opens offline.
docs: $(VENV)/.dev-installed
	$(PY) -m sphinx -E -W --keep-going -q -b html docs/api build/docs
	@echo "API reference: build/docs/index.html"

bench: $(VENV)/.dev-installed
	$(PY) bench/bench_lstm.py

bench-quick: $(VENV)/.dev-installed
	$(PY) bench/bench_lstm.py --quick

# The streaming generate under memory checkers (see bench/memcheck_generate.py); ~40 min.
memcheck: $(VENV)/.dev-installed
	MALLOC_CHECK_=3 MALLOC_PERTURB_=165 $(PY) bench/memcheck_generate.py --chars 1000000
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(VENV)/numba-boundscheck $(PY) bench/memcheck_generate.py --chars 100000
	@if command -v valgrind >/dev/null; then \
	  PYTHONMALLOC=malloc valgrind --quiet --error-exitcode=99 --undef-value-errors=no \
	    --suppressions=bench/valgrind.supp $(PY) bench/memcheck_generate.py --chars 5000; \
	else echo "valgrind is not installed: its run is skipped"; fi

clean:
	rm -rf $(VENV) build dist src/*.egg-info
