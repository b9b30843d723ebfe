# prefopt developer entry points. Every target installs what it needs, so each works on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch from the local registry (seconds); a bare `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

# Offline and self-contained: every cache lives inside the workspace.
export PREFOPT_CACHE ?= $(CURDIR)/.cache/prefopt
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export HF_HOME ?= $(CURDIR)/.cache/hf
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE ?= offline
export WANDB_DIR ?= $(CURDIR)/.cache/wandb
export WANDB_CACHE_DIR ?= $(CURDIR)/.cache/wandb/cache
export WANDB_CONFIG_DIR ?= $(CURDIR)/.cache/wandb/config
export PYTHONWARNINGS ?= ignore
# pip installs without byte-compiling every module of torch and transformers (about 25 s of a 50 s install); Python
# then writes the bytecode of what is imported, on first import, which needs writing allowed.
unexport PYTHONDONTWRITEBYTECODE

# A real single-node Slurm for the launch tests (../shared/slurm, as in CI); idempotent, needs root.
SLURM_SCRIPTS ?= $(CURDIR)/../shared/slurm

.PHONY: install warm slurm test lint demo toy clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-compile -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# DeepSpeed JIT-compiles a small CPU communication extension on the first start of several ranks (30-60 s): the
# tests run some, so build it once, here (a single process skips it: prefopt/engine.py).
warm: install
	mkdir -p $(TORCH_EXTENSIONS_DIR) $(WANDB_DIR) $(WANDB_CACHE_DIR) $(WANDB_CONFIG_DIR)
	DS_ACCELERATOR=cpu $(PY) -c "from deepspeed.accelerator import get_accelerator; get_accelerator().create_op_builder('ShareMemCommBuilder').load(); print('deepspeed warm')"

slurm:
	@if scontrol ping 2>/dev/null | grep -q UP; then echo "slurm: up"; \
	elif [ -x "$(SLURM_SCRIPTS)/start_local_slurm.sh" ]; then bash "$(SLURM_SCRIPTS)/start_local_slurm.sh"; \
	else echo "slurm: no controller and no $(SLURM_SCRIPTS)/start_local_slurm.sh; the Slurm tests will fail" >&2; fi

# Most tests are one Python process on one core (tiny models, process start-up, DeepSpeed set-up), so two workers
# per two cores nearly halve the wall time; tests/conftest.py splits the cores' threads between the workers. Lint
# runs first (a second): an unsorted import once sat on main because nothing in CI read ruff's verdict.
test: warm slurm lint
	$(VENV)/bin/pytest -q -n auto --maxprocesses 4

lint: install
	$(VENV)/bin/ruff check prefopt tests scripts benchmarks
	$(VENV)/bin/shellcheck scripts/*.sh scripts/slurm/* benchmarks/*.sh .ci/run

demo: install
	bash scripts/demo.sh

toy: warm
	bash scripts/toy_figures.sh

clean:
	rm -rf runs .cache
