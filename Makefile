# The two commands a new user needs: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install cluster cluster-down lint format typecheck test test-fast test-chaos image test-image demo model data clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing ftmoe-operator with its dev extras"
	@echo "    (torch from PyPI is the CUDA build: about 3.5 GB, several minutes when cold)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip "setuptools>=77,<90" wheel
	@echo "    pip prints a line per package; the torch download alone is silent for a minute or two"
	$(BIN)/python -m pip install --progress-bar $$([ -t 1 ] && echo on || echo off) -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Build (once, cached in ~/.cache/ftmoe) and start the local cluster.
cluster: install
	$(BIN)/ftmoe cluster up

cluster-down: install
	$(BIN)/ftmoe cluster down

# Everything, the local-cluster tests included. The toolchain is built first so that its
# progress shows on the terminal rather than inside pytest's captured output.
test: lint
	$(BIN)/ftmoe cluster build
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff (pyflakes, pycodestyle, isort, bugbear, pyupgrade; settings in pyproject.toml), in a
# second, then mypy on the installed layout (about a minute cold, seconds warm).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) --no-print-directory typecheck

# Rewrite the code in the house style that `make lint` checks.
format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

TYPECHECK := build/typecheck
typecheck: install
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/ftmoe
	@for f in ftmoe/*; do case $$f in *__pycache__) ;; *) ln -s $(CURDIR)/$$f $(TYPECHECK)/ftmoe/ ;; esac; done
	@for d in operator predictor simulator; do ln -s $(CURDIR)/$$d $(TYPECHECK)/ftmoe/$$d; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/build/.mypy_cache -p ftmoe

# The chaos scenarios alone (also part of `make test`); FTMOE_CHAOS_ROUNDS=20 for a soak.
test-chaos: install
	$(BIN)/pytest tests/chaos $(PYTEST_ARGS)

# Unit tests only, no cluster.
test-fast: lint
	$(BIN)/pytest -m "not cluster" $(PYTEST_ARGS)

# The operator image from the Dockerfile, with buildah (no Docker engine needed; installs
# buildah and debootstrap from Debian when missing, makes a Debian base image once).
IMAGE ?= localhost/ftmoe-operator:dev
image:
	deploy/image/build.sh $(IMAGE)

# Build the image, then run its entrypoint as the operator against the local cluster.
# Not part of `make test`: see the README, "The image".
test-image: install image
	$(BIN)/ftmoe cluster build
	FTMOE_IMAGE=$(IMAGE) $(BIN)/pytest -m image tests/image $(PYTEST_ARGS)

# The default dataset (the paper's setting) and the default model trained on it; the
# model is committed under predictor/models/default/ and shipped in the wheel.
DEFAULT_DATA := data/sim-H16-T10000-s0.npz
data: $(DEFAULT_DATA)
$(DEFAULT_DATA): | install
	$(BIN)/ftmoe simulate --hosts 16 --intervals 10000 --seed 0 --out $@

model: install $(DEFAULT_DATA)
	$(BIN)/ftmoe train --data $(DEFAULT_DATA) --out predictor/models/default --epochs 30 --seed 0

demo: install
	$(BIN)/python -m ftmoe.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
