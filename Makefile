# Two entry points: `make run` (the study) and `make test` (ruff + pytest); then `make serve`
# (the draw-a-letter page on ./study), `make tensorboard` and `make extras` (serve, export, TensorBoard).
# Each creates .venv on first use. torch is pinned to one version (2.14.1) so that set-up installs
# a known build; the suite's figures were measured with it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: run test lint clean serve tensorboard extras

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .
	touch $@

# The optional parts: the page (serve), ONNX export, TensorBoard.
$(VENV)/.extras: $(VENV)/.base
	$(PY) -m pip install -q -e '.[serve,export,tensorboard]'
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# A data copy beside the checkout (../shared/data/emnist), where one exists, is used unless
# LETTERBENCH_DATA says otherwise; elsewhere `letterbench run` fetches EMNIST itself.
SHARED_DATA := $(wildcard ../shared/data/emnist/emnist-letters-train-images-idx3-ubyte.gz)
ifeq ($(origin LETTERBENCH_DATA),undefined)
ifneq ($(SHARED_DATA),)
export LETTERBENCH_DATA := $(abspath ../shared/data/emnist)
endif
endif

# The project's own real-world letters, where bench/make_real_world.py has built them: every model
# also reads them (the package itself never looks for them; a later --real-world in ARGS wins).
PROJECT_SET := $(if $(wildcard bench/real-world/labels.csv),--real-world bench/real-world)
run: $(VENV)/.base
	LETTERBENCH_VIA_MAKE=1 $(VENV)/bin/letterbench run $(if $(findstring --split,$(ARGS)),,$(PROJECT_SET)) $(ARGS)

extras: $(VENV)/.extras

STUDY ?= study
serve: $(VENV)/.extras
	$(VENV)/bin/letterbench serve --run $(STUDY) $(ARGS)

tensorboard: $(VENV)/.extras
	$(VENV)/bin/tensorboard --logdir $(STUDY)/runs $(ARGS)

test: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

clean:
	rm -rf $(VENV) build src/*.egg-info
