# Two commands: `make book` and `make test`. Both create .venv on first use
# (reused while pyproject.toml is unchanged) and work offline once installed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BOOK_PROFILE ?= quick
# Two cores: let torch use them, but no oversubscription when two processes run.
export OMP_NUM_THREADS ?= 2
# Idle OpenMP threads sleep instead of spinning: spinning threads made small-model
# chapters several times slower whenever the two cores were shared.
export OMP_WAIT_POLICY ?= PASSIVE
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test unit nbval book-strict render sweep evidence gpu-check bench mutation clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

## make book: execute every chapter (at $BOOK_PROFILE, default quick), build _build/html and
## print how long each chapter took to execute (or that its outputs came from the cache). An image chapter
## with a recorded page (evidence/pages/, its run on Fashion-MNIST in the evidence ledger) shows that instead.
book: $(STAMP)
	$(BIN)/python -m lib.bookcache check
	$(BIN)/python -m lib.bookcache import-pages
	@start=$$(date +%s); set -x; $(BIN)/jupyter-book build . --builder html; { set +x; } 2>/dev/null; \
		$(BIN)/python -m lib.bookcache times --since $$start
	@echo "Book: $(CURDIR)/_build/html/index.html"

## make test: ruff (lint and format check) + unit tests + nbval of every chapter + strict book build +
## browser render check
# Tests and chapters run in TEST_WORKERS processes (pytest-xdist; a notebook's cells all in one of
# them, --dist loadfile), each with its share of the cores as CPU threads: on these small models
# two one-thread processes finish sooner than one two-thread process. The longest files come first
# (tests/nbval_capture.py; --no-loadscope-reorder keeps that order), so none starts when the other
# process is almost done. TEST_WORKERS=0 runs everything in one process.
# Then every chapter nbval executed at its defaults is compared, exactly, with its recorded run in
# the evidence ledger when it can be (same lib/, notebook, torch, device and thread count). That
# comparison (one CPU-bound process) runs beside the book build and the render check, which mostly
# wait on Chromium; its report comes after theirs, and either failing fails the target.
CORES := $(shell nproc 2>/dev/null || echo 2)
TEST_WORKERS ?= $(shell n=$(CORES); echo $$(( n < 4 ? n : 4 )))
TEST_THREADS = $(shell w=$(TEST_WORKERS); echo $$(( w > 0 ? ($(CORES) / w > 0 ? $(CORES) / w : 1) : $(OMP_NUM_THREADS) )))
test: $(STAMP)
	rm -rf _build/.jupyter_cache _build/nbval
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m lib.bookcache check
	NBVAL_CAPTURE_DIR=_build/nbval OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -m "not render" \
		-p tests.nbval_capture -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		book tests --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 900
	@$(BIN)/python -m lib.evidence recheck _build/nbval/book --threads $(TEST_THREADS) > _build/recheck.log 2>&1 & \
		recheck=$$!; rc=0; set -x; \
		{ $(BIN)/python -m lib.bookcache import _build/nbval && $(BIN)/python -m lib.bookcache import-pages && \
		  $(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going && \
		  $(BIN)/python -m pytest -m render tests/test_render.py; } || rc=$$?; \
		{ set +x; } 2>/dev/null; rrc=0; wait $$recheck || rrc=$$?; \
		echo "== python -m lib.evidence recheck _build/nbval/book --threads $(TEST_THREADS)"; cat _build/recheck.log; \
		exit $$(( rc ? rc : rrc ))

## make sweep SPEC=sweeps/x.yaml [WORKERS=2]
sweep: $(STAMP)
	@test -n "$(SPEC)" || { echo "usage: make sweep SPEC=sweeps/<spec>.yaml [WORKERS=N]"; exit 2; }
	$(BIN)/python -m lib.sweep $(SPEC) --workers $${WORKERS:-1}

## make evidence [WORKERS=2]: replicate every claim (sweeps/evidence/*.yaml, resumable), then the ledger in evidence/
EVIDENCE_SPECS := $(sort $(wildcard sweeps/evidence/*.yaml))
# A spec whose runs the ledger holds with its chapter's current code (and notebook) is skipped: only stale
# or missing chapters run again (their stale points too: --rerun-stale), and the build keeps the current
# rows. The build refuses to replace the ledger with fewer runs (evidence/ is then left as it is).
# evidence/recording.json gains this invocation: command, workers, per-spec and total wall time (also when
# it is stopped by INT or TERM: marked interrupted, since the resumed invocation skips the runs it finished).
# Then the image chapters' pages the book shows: the ledger's run on Fashion-MNIST, seed 0, of each, copied
# into evidence/pages/ (lib.recorded; refused, and the pages left as they are, when a run is missing).
evidence: $(STAMP)
	rc=0; start=$$(date +%s); workers=$${WORKERS:-1}; times=""; spec=""; t0=$$start; \
	trap '$(BIN)/python -m lib.evidence log-recording --interrupted --workers $$workers \
		--wall-s $$(( $$(date +%s) - start )) $$times $${spec:+$$spec=$$(( $$(date +%s) - t0 ))}; exit 130' INT TERM; \
	for spec in $(EVIDENCE_SPECS); do \
		t0=$$(date +%s); \
		if $(BIN)/python -m lib.evidence current $$spec; then :; \
		else $(BIN)/python -m lib.sweep $$spec --workers $$workers --rerun-stale || rc=$$?; fi; \
		times="$$times $$spec=$$(( $$(date +%s) - t0 ))"; \
	done; spec=""; \
	if $(BIN)/python -m lib.evidence build $(EVIDENCE_SPECS); then $(BIN)/python -m lib.bookcache pages || rc=$$?; \
	else rc=$$?; fi; \
	$(BIN)/python -m lib.evidence readme || rc=$$?; \
	$(BIN)/python -m lib.evidence log-recording --workers $$workers --wall-s $$(( $$(date +%s) - start )) $$times; \
	exit $$rc

## make gpu-check [OUT=gpu-check] [BUDGET=480]: on a GPU, every chapter once at the paper profile's cut
## (lib/gpu_check.py): executed notebooks, a timing table and ledger rows naming the device, in OUT
gpu-check: $(STAMP)
	$(BIN)/python -m lib.gpu_check --out $${OUT:-gpu-check} --budget $${BUDGET:-480}

## make bench: every benchmark, printing speed ratios; each runs to the end on generated or embedded data,
## and the failures are listed at the end (the exit status says whether any failed)
bench: $(STAMP)
	@failed=""; for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed"; exit 1; fi; echo "every benchmark ran"

## make mutation [PER_MODULE=40] [SEED=34]: mutation score of the science modules and the claim code (mutmut, on a
## copy in /tmp: lib/ is never mutated), per file, with the surviving mutants; about 30 minutes on 2 cores. Not in make test.
mutation: $(STAMP)
	@$(BIN)/python -c 'import importlib.metadata as m; assert m.version("mutmut") == "3.8.1"' 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[mutation]"
	$(BIN)/python -m tests.mutation --per-module $${PER_MODULE:-40} --seed $${SEED:-34} --workers $(CORES)

clean:
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
