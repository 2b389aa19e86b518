# Two commands matter on a fresh machine:  `make repro` (set up + run the embedded default end to end)
# and `make test` (set up + run the tests). Both create or reuse .venv from requirements.lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Stage commands use whichever `python` is first on PATH, so put the venv first.
# Reference numerics by default: the CPU libraries held to the AVX2 kernels and 2 threads the committed results
# were computed with (scripts/cpu_avx2.env; the reid-repro command applies the same itself, reid_repro/numerics.py),
# so every CPU computes the committed numbers. CPU=native opts out: this CPU's own kernels, recorded by every run
# as off the reference (docs/numerics.md "Precision and CPU kernels").
CPU    ?= reference
ifeq ($(filter $(CPU),reference avx2 native),)
$(error CPU=$(CPU): expected reference (the default; avx2 is its older name) or native)
endif
NUMERICS := $(if $(filter native,$(CPU)),REID_CPU=native,. "$(CURDIR)/scripts/cpu_avx2.env" && REID_CPU=reference)
RUN    := $(NUMERICS) PATH="$(CURDIR)/$(BIN):$$PATH" ANNY_CACHE_DIR="$(CURDIR)/.cache/anny"

.PHONY: setup test repro paper variant verify check-system bench lock clean-venv mlflow-ui dashboard

setup: $(STAMP)

check-system:
	@bash scripts/check_system.sh

$(STAMP): requirements.lock pyproject.toml
	bash scripts/check_system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The suite runs on TEST_WORKERS pytest-xdist workers (work stealing balances the long pipeline tests against the
# rest); TEST_WORKERS=0 runs it in one process. bench/bench_suite.py measures where the time goes.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# check validates all of params.yaml and every run's paper row before hours of training; `reid-repro repro` then
# says how many stages are out of date and how long they should take, and runs dvc repro showing stage k of n and
# the time left.
# `make repro LARGER=1` also trains the larger profile (params.yaml: larger; GCL+'s other domains and sweeps):
# `reid-repro repro` writes its stages into conf/runs.json (larger_stages: empty while it is off, so that `dvc status`
# skips them), then `dvc exp run -S larger.enabled=true` sets the key in params.yaml (git diff shows both).
repro: $(STAMP)
	$(RUN) $(BIN)/reid-repro check
ifeq ($(LARGER),1)
	$(RUN) $(BIN)/reid-repro repro --exp -S larger.enabled=true
else
	$(RUN) $(BIN)/reid-repro repro
endif

# One paper only: its runs (and what they start from), then its own report in reports/papers/<P>/.
# `make paper P=ise` or `make paper P=ice`; `make repro` still rebuilds everything.
paper: $(STAMP)
	@test -n "$(P)" || { echo "usage: make paper P=ise (or P=ice, P=canu, P=gcl_plus)" >&2; exit 2; }
	$(RUN) $(BIN)/reid-repro check
	$(RUN) $(BIN)/reid-repro repro start $$($(RUN) $(BIN)/reid-repro stages --paper $(P))
	$(RUN) $(BIN)/reid-repro report --paper $(P) --out reports/papers/$(P) --model-figures reports/model_figures

# A variant of one or more params.yaml keys that trains only the stages reading them, the absent upstream stages
# they need and the report (`make variant SET="ise.lambda0=2.0"`; docs/pipeline.md "A variant on a fresh clone").
variant: $(STAMP)
	@test -n "$(SET)" || { echo 'usage: make variant SET="ise.lambda0=2.0" (several: SET="a=1 b=2")' >&2; exit 2; }
	$(RUN) $(BIN)/reid-repro variant $(foreach kv,$(SET),-S $(kv))

# Re-train a few committed runs on this machine and check each lands inside the committed interval
# (`make verify` or `make verify RUNS="cc_market ise_market cc_duke"`).
verify: $(STAMP)
	$(RUN) $(BIN)/reid-repro verify $(RUNS)

bench: $(STAMP)
	$(RUN) $(BIN)/python bench/bench_evaluation.py
	$(RUN) $(BIN)/python bench/bench_clustering.py
	$(RUN) $(BIN)/python bench/bench_world.py
	$(RUN) $(BIN)/python bench/bench_training.py
	$(RUN) $(BIN)/python bench/bench_report.py
	$(RUN) $(BIN)/python bench/bench_precision.py
	$(RUN) $(BIN)/python bench/bench_canu.py
	$(RUN) $(BIN)/python bench/screenshot_report.py

# Re-freeze the tested environment after changing a pin in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^reid-repro' > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean-venv:
	rm -rf $(VENV)

# Browse the MLflow runs on loopback unless MLFLOW_HOST is given (not HOST: some shells export the machine's
# name as HOST).
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
# The committed runs are imported first (idempotent; `reid-repro mlflow-import`), so a fresh clone shows them all.
mlflow-ui: $(STAMP)
	$(RUN) $(BIN)/reid-repro mlflow-import
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

# The Optuna studies in optuna-dashboard on http://127.0.0.1:$(PORT) (`make dashboard PORT=9000`); OPTUNA_STORAGE
# (a PostgreSQL URL) instead of the local journal file when the studies are shared.
PORT ?= 8080
dashboard: $(STAMP)
	$(RUN) PORT=$(PORT) bash scripts/dashboard.sh
