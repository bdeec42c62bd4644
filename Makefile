# Everything a fresh machine needs: `make train` and `make test` create the venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist
ARGS ?=
TEST_JOBS ?= 2
EXPERIMENT ?= fashion_mnist/best

.PHONY: install data train test test-fast bench bench-overhead bench-data report clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Real Fashion-MNIST from Debian's package (offline); elsewhere torchvision downloads it on first use.
data:
	@if [ ! -d $(FMNIST) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq dataset-fashion-mnist || \
		 (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null; fi

# The best Fashion-MNIST recipe for 5 minutes (conf/experiment/fashion_mnist/best.yaml);
# another preset: `make train EXPERIMENT=fashion_mnist/dcgan_hinge`; more options: `make train ARGS="seed=2"`.
train: $(STAMP) data
	$(PY) train.py experiment=$(EXPERIMENT) trainer.max_time=00:00:05:00 $(ARGS)

test: $(STAMP) data
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile --durations=30 $(ARGS)

# The developer's loop: everything but the tests marked slow (end-to-end subprocesses, DDP, sweeps).
test-fast: $(STAMP) data
	$(PY) -m pytest -m "not slow" $(ARGS)

bench: $(STAMP) data
	$(PY) benchmarks/bench_step.py $(ARGS)
	$(PY) benchmarks/bench_step.py --variants $(ARGS)
	$(PY) benchmarks/bench_step.py $(ARGS) --models

# The training step's fixed cost against the plain loop (docs/benchmarks.md): the ring MLP and DCGAN, the breakdown.
bench-overhead: $(STAMP) data
	$(PY) benchmarks/bench_overhead.py $(ARGS)

# Loading users' images (docs/benchmarks.md): the image sets (made once, in SETS), the loaders before per-example
# reading (a worktree of 320ace0 in OLD), then every loader; a part again: `make bench-data ARGS="--only zip/5k"`.
SETS ?= /tmp/gan_image_sets
OLD ?= /tmp/old
bench-data: $(STAMP) data
	$(PY) benchmarks/make_image_sets.py --out $(SETS)
	test -d $(OLD)/src || git worktree add --detach $(OLD) 320ace0
	$(PY) benchmarks/bench_loaders.py --sets $(SETS) --old-src $(OLD)/src --json benchmarks/results/loaders-cpu.json $(ARGS)

# Compare a sweep's runs: `make report DIR=multirun/2026-01-31/12-00-00` writes report.png and report.md there.
report: $(STAMP)
	$(PY) report.py $(DIR) $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
