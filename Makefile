# vad-eval: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint pytest bench clean

$(STAMP): pyproject.toml
	@command -v java >/dev/null 2>&1 || { echo "warning: no 'java' on PATH: pycocoevalcap's PTB tokenizer and METEOR (HIVAU captions) need a Java runtime; install one with 'apt-get install -y default-jre-headless'" >&2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vad-eval --method frozen --task ucf_crime --split sample

lint: $(STAMP)
	$(BIN)/ruff check harness tasks methods leaderboard tests bench
	$(BIN)/mypy harness tasks

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
