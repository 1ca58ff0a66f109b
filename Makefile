# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SYSDEPS := $(VENV)/.system-deps
OUT    ?= runs/pbmc68k_reduced
JOBS   ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -c constraints.txt -e ".[test]"
	touch $(STAMP)

# R and its packages for the Seurat and SingleR adapters (Debian packages; see the script)
$(SYSDEPS): tools/install-system-deps.sh | $(BIN)/python
	tools/install-system-deps.sh
	touch $(SYSDEPS)

run: $(STAMP)
	$(BIN)/scactive simulate pbmc68k_reduced --min-genes 0 --jobs $(JOBS) --out $(OUT)

test: $(STAMP) $(SYSDEPS)
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) runs
