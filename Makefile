# Two commands set everything up on a fresh Debian machine: `make test` and `make bench`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The torch + torchvision pair known to work together on the reference machine (x86_64, Python 3.11).
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
DATA_DIR := /usr/share/datasets/fashion-mnist

.PHONY: test test-fast bench lint data perf figures clean mutate zoo zoo-figures zoo-probe levers clients docs notebooks

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.venv: $(VENV)/.installed

# Debian's dataset-fashion-mnist package, when missing and we are root; elsewhere the data module
# falls back to ABN_DATA_DIR or torchvision's download and explains what to do.
data:
	@if [ ! -f $(DATA_DIR)/t10k-images-idx3-ubyte.gz ] && [ -z "$$ABN_DATA_DIR" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
		else echo "note: Fashion-MNIST not in $(DATA_DIR); run 'sudo apt-get install dataset-fashion-mnist' or set ABN_DATA_DIR"; fi; \
	fi

# One pytest worker per core (pytest-xdist), each with one torch thread: two workers with two
# threads each would slow each other on two cores. About 10 minutes here against 15 in one process.
TEST_WORKERS ?= auto
test: .venv data
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS)

test-fast: .venv data
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) -m "not slow"

# Other RL libraries plugged into the env (tests/clients; docs/guides/compatibility.md). They are
# installed into the venv beside the project, never as its dependencies, with every installed
# version held by a constraints file: torch, gymnasium and numpy (and the rest) stay as they are.
# Tianshou 2.0.1 pins pandas<3 while calling only pd.isnull, so it goes in without its pins,
# after its other requirements (virtualenv, which it never imports, is left out).
# MO-Gymnasium and morl-baselines (the multi-objective ids) go in with their requirements, in the
# same constrained install: morl-baselines imports wandb, pymoo, cvxpy and pycddlib at the top of
# the algorithms the tests run (which never log: log=False).
CLIENTS_TORCHRL ?= torchrl==0.14.1
CLIENTS_TIANSHOU ?= tianshou==2.0.1
CLIENTS_MO ?= mo-gymnasium==1.3.2 morl-baselines==1.3.0
TIANSHOU_DEPS := "deepdiff>=7.0.1,<8" "h5py>=3.9,<4" "numba>=0.60" "overrides>=7.4,<8" "pettingzoo>=1.22,<2" \
	"sensai-utils>=1.6"
CLIENTS_CONSTRAINTS := $(VENV)/clients-constraints.txt
clients: .venv data
	$(PY) -m pip freeze --exclude-editable | grep '==' > $(CLIENTS_CONSTRAINTS)
	$(PY) -m pip install -q -c $(CLIENTS_CONSTRAINTS) $(CLIENTS_TORCHRL) $(TIANSHOU_DEPS) $(CLIENTS_MO)
	$(PY) -m pip install -q --no-deps $(CLIENTS_TIANSHOU)
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/clients -p no:cacheprovider

# The three leaderboards: the shipped ResNet-20 task, the steep quarter-width one, and the steep one
# priced in BitFusion bricks (its own static front; test split, seed 0). One torch thread: on 2 cores
# shared with another job, two spinning OpenMP threads slow the small convolutions down by orders of
# magnitude; the figures are the same with any thread count.
BENCH_ENVS ?= ABN-ResNet-v0 ABN-ResNet20Quarter-v1 ABN-ResNet20Quarter-BitFusion-v1 ABN-MobileNetV2-v0
# The levers are trained for the two BitOps tasks (the BitFusion task ships one escalation controller).
LEVERS_ENVS ?= ABN-ResNet-v0 ABN-ResNet20Quarter-v1
# BENCH_CURVES: curves (NAME@sweep) ranked beside an env's default table, as ENV=CURVE entries.
BENCH_THREADS ?= 1
BENCH_CURVES ?= ABN-ResNet20Quarter-v1=escalation@sweep ABN-ResNet20Quarter-v1=ppo-budget@sweep \
	ABN-ResNet20Quarter-v1=envelope@sweep
bench: .venv data
	set -e; for env in $(BENCH_ENVS); do \
		curves=$$(for c in $(BENCH_CURVES); do case $$c in "$$env="*) printf '%s,' "$${c#*=}";; esac; done); \
		OMP_NUM_THREADS=$(BENCH_THREADS) $(VENV)/bin/abn-gym bench --env $$env --out results/$$env \
			$${curves:+--agents "$${curves%,}"}; done

perf: .venv data
	$(VENV)/bin/abn-gym perf --include-bench --int-kernels --cache-timesteps 900000 --out docs

# The README's figures: the leaderboard plots of `make bench`, copied next to the README.
figures: bench
	set -e; for env in $(BENCH_ENVS); do mkdir -p docs/$$env && \
		cp results/$$env/pareto.png results/$$env/heatmap-*.png results/$$env/leaderboard.md \
			results/$$env/leaderboard-compact.md docs/$$env/ && \
		if [ -f results/$$env/curves.png ]; then cp results/$$env/curves.png docs/$$env/; fi; done

# The levers for learned controllers, trained and compared on the val split of each task (resumable).
levers: .venv data
	set -e; for env in $(LEVERS_ENVS); do $(VENV)/bin/abn-gym levers --env $$env --out results/levers; \
		mkdir -p docs/levers && cp results/levers/$$env/levers.md docs/levers/$$env.md; done

# The algorithm zoo: every SB3 / sb3-contrib algorithm of agents/hyperparams/zoo.yml, 3 seeds each,
# into results/zoo (resumable: rerun to continue). ZOO_ARGS passes options, e.g. ZOO_ARGS="--ray local".
zoo: .venv data
	OMP_NUM_THREADS=1 $(VENV)/bin/abn-gym zoo $(ZOO_ARGS)

# The README's zoo figures and tables, copied from results/zoo (the models stay there). The shipped
# docs/zoo/ came from `make zoo-figures ZOO_ARGS="--envs ABN-ResNet20Quarter-v1,ABN-ResNet20Quarter-Budget-v1"`;
# docs/zoo/resnet-v0-150k/ keeps ABN-ResNet-v0's earlier 150k-step tables (those sections are unchanged).
zoo-figures: zoo
	mkdir -p docs/zoo && cp results/zoo/zoo.md results/zoo/zoo-summary.md results/zoo/summary.json results/zoo/curves.csv \
		results/zoo/leaderboard-*.csv results/zoo/leaderboard-*.md results/zoo/curves-*.png results/zoo/pareto-*.png docs/zoo/

# The val probe behind zoo.yml's normalize keys: on the steep task's ids, seed 0, every algorithm with and
# without observation normalisation (rows <algo> and <algo>+norm), scored on val; tables and curves into
# docs/zoo/normalize-probe-*. Resumable like the zoo.
ZOO_PROBE_ENVS := ABN-ResNet20Quarter-v1,ABN-ResNet20Quarter-Budget-v1
zoo-probe: .venv data
	OMP_NUM_THREADS=1 $(VENV)/bin/abn-gym zoo --envs $(ZOO_PROBE_ENVS) --seeds 0 --timesteps 500000 --split val \
		--normalize both --out results/zoo-probe
	mkdir -p docs/zoo && cp results/zoo-probe/zoo-summary.md docs/zoo/normalize-probe-summary.md
	set -e; for env in $$(echo $(ZOO_PROBE_ENVS) | tr , ' '); do \
		cp results/zoo-probe/leaderboard-$$env.md docs/zoo/normalize-probe-leaderboard-$$env.md; \
		cp results/zoo-probe/curves-$$env.png docs/zoo/normalize-probe-curves-$$env.png; done

# Mutation testing (mutmut, configured in pyproject.toml) of engine, observations, rewards,
# validate, and the leaderboard's verdicts (agents/app/stats.py, agents/app/front.py). It runs in a fresh clone of the last commit under MUTATE_DIR, so this working tree is
# never mutated; about an hour on one core. Not part of `make test`. Results: `mutmut results`
# and mutants/mutmut-cicd-stats.json inside MUTATE_DIR.
MUTATE_DIR ?= /tmp/abn-gym-mutate
mutate: .venv data
	rm -rf $(MUTATE_DIR) && git clone -q "$(CURDIR)" $(MUTATE_DIR)
	cd $(MUTATE_DIR) && OMP_NUM_THREADS=1 "$(CURDIR)/$(VENV)/bin/mutmut" run --max-children $${MUTATE_JOBS:-1}
	cd $(MUTATE_DIR) && "$(CURDIR)/$(VENV)/bin/mutmut" export-cicd-stats && cat mutants/mutmut-cicd-stats.json

lint: .venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check supernets abn_gym agents tests
	$(VENV)/bin/mypy

# The documentation site (Sphinx + furo + MyST) into docs/_build/html (open index.html there),
# warnings as errors. The API
# pages are generated from the docstrings at every build (docs/api/, not committed).
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	rm -rf docs/api
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The notebooks, generated from notebooks/generate.py and executed in place, so that they are
# committed with their outputs (a few minutes: notebook 02 trains PPO).
notebooks: .venv data
	$(PY) notebooks/generate.py
	set -e; for nb in notebooks/*.ipynb; do \
		OMP_NUM_THREADS=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb"; done

clean:
	rm -rf $(VENV) .pytest_cache docs/_build docs/api
