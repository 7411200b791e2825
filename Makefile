# acnn: two commands on a fresh machine.
#   make run    set up, then run the main job on Fashion-MNIST
#   make test   set up, then run the test suite
# Set-up creates .venv when missing and installs the project into it. torch is
# installed first at the pinned version (a CPU wheel where one is on local disk);
# elsewhere pass e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.acnn-installed
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
# The main job: design a 2-stage local cascade + WiFi cloud under 3 mJ per image, with
# search settings trimmed for 2 cores and --time-limit holding the whole run to about
# 12 minutes (the search and re-ranking leave the estimated final trainings their time).
RUN_DIR ?= runs/design
TIME_LIMIT ?= 12min
RUN_ARGS ?= --budget 3mJ --trials 6 --initial-points 3 --proxy-subset 4000 --final-epochs 2 --cloud-epochs 2 --rerank 2 --time-limit $(TIME_LIMIT)

.PHONY: run test setup dataset lint bench bench-energy bench-serve bench-runtime clean

# A second `make run` resumes (and re-reports) the run instead of refusing its folder,
# under the same time limit (counted from the resume).
run: setup dataset
	@if [ -e $(RUN_DIR)/journal.jsonl ]; then \
	  $(BIN)/acnn design --resume $(RUN_DIR) --time-limit $(TIME_LIMIT); \
	else \
	  $(BIN)/acnn design --dataset fashion-mnist $(RUN_ARGS) --out $(RUN_DIR); \
	fi

test: setup dataset
	$(BIN)/ruff check .
	$(BIN)/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Fashion-MNIST comes from Debian's package; install it when we can, else say how.
dataset:
	@if [ -e "$(FASHION_MNIST_DIR)/train-images-idx3-ubyte.gz" ] || [ -e "$(FASHION_MNIST_DIR)/train-images-idx3-ubyte" ]; then \
	  echo "Fashion-MNIST: $(FASHION_MNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Fashion-MNIST (dataset-fashion-mnist) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
	  echo "Fashion-MNIST is not installed. On Debian/Ubuntu run: sudo apt-get install -y dataset-fashion-mnist"; \
	  echo "or put its four IDX files in a folder and set ACNN_FASHION_MNIST_DIR=/that/folder"; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup dataset
	$(BIN)/python benchmarks/train_throughput.py

# Energy-model accuracy and speed (two profiles of this machine, about 3 minutes).
bench-energy: setup
	$(BIN)/python benchmarks/energy_model_accuracy.py --fresh

# acnn serve vs MLServer throughput and the client's routing overhead (about 1 minute).
bench-serve: setup
	$(BIN)/python benchmarks/serve_throughput.py

# The main job designed for eager torch and for ONNX Runtime, each design and the same
# baselines measured in both runtimes (two main-job designs: about 30 minutes).
bench-runtime: setup dataset
	$(BIN)/python benchmarks/runtime_gain.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
