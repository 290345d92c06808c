# Two commands on a fresh machine:  make demo  |  make test
# Both create .venv if missing and install the package with the CPU build of torch.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The shrunken seed_gates study: all 7 cells x 2 seeds on short sequences (< 10 min on 2 cores).
DEMO_SWEEP := multirun/demo
DEMO_ARGS  := experiment=seed_gates seed=0,1 name=seed_gates_demo task.seq_len=30 task.n_train=4000 \
              task.n_val=500 task.n_test=1000 model.hidden_size=32 optim.lr=0.003 trainer.max_steps=1000 num_threads=1

.PHONY: setup test test-all demo report clean

setup: $(STAMP)

# torch first, pinned: pip takes the local CPU wheel, and the package's own `torch>=2.3` is then
# already satisfied, so nothing ever pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# One pytest worker per core; a file's tests stay on one worker, so its module fixtures are built once.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n auto --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

demo: $(STAMP)
	rm -rf $(DEMO_SWEEP)
	$(BIN)/lstm-ablate -m $(DEMO_ARGS) hydra.sweep.dir=$(DEMO_SWEEP)
	$(BIN)/lstm-ablate-report $(DEMO_SWEEP) --out reports/demo --title "seed_gates demo (make demo)"

# Rebuild every committed report from its own results.csv (no training).
report: $(STAMP)
	$(BIN)/lstm-ablate-report --regenerate reports/

clean:
	rm -rf outputs multirun
