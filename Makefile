# CytoAtlas Data Services. Two commands for a newcomer: `make demo` and `make test`.
# Both set themselves up: a virtualenv in .venv, the package installed editable, protos generated.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GENERATED := cytoatlas/table/v1/table_service_pb2.py
PROTOS := $(shell find protos -name '*.proto')
BUF := $(VENV)/node/node_modules/.bin/buf
DEMO_DIR ?= demo

.PHONY: setup protos lint-protos test test-deploy test-reliability demo bench bench-quick clean
RELIABILITY_TESTS := tests/test_hot_swap.py tests/test_load_limits.py tests/test_faults.py \
	tests/test_security.py tests/test_hostile_input.py tests/test_differential.py tests/test_mutation.py \
	tests/test_doc_commands.py tests/test_demo.py

setup: $(STAMP) $(GENERATED)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The generated Python code is not checked in: it is made here from protos/ (see README).
$(GENERATED): $(PROTOS) protos/generate.py $(STAMP)
	$(BIN)/python protos/generate.py

protos: $(STAMP)
	$(BIN)/python protos/generate.py

$(BUF):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node @bufbuild/buf@1.75.0

lint-protos: $(BUF)
	cd protos && ../$(BUF) lint

# Two pytest workers (pytest-xdist), one test file each at a time: the suite mostly waits on
# services, builds and subprocesses, so two workers halve its wall time on two cores.
test: setup lint-protos
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The docker-compose stack on a real Docker engine (installs and starts one if needed; see deploy/).
test-deploy: setup
	$(BIN)/python -m pytest -q -s -p no:cacheprovider --timeout 1800 -o testpaths=deploy deploy/test_stack.py

# The long runs (marked `reliability`, left out of `make test`) plus bigger samples of the random
# tests; each test prints FIGURE lines. pytest-timeout bounds every test.
test-reliability: setup
	CYTOATLAS_DIFFERENTIAL_EXAMPLES=2000 CYTOATLAS_HOSTILE_EXAMPLES=1000 CYTOATLAS_HOSTILE_PER_RPC=0 \
		$(BIN)/python -m pytest -q -s -m "" --timeout 600 $(RELIABILITY_TESTS)

# PORTS=50061,50062,50063 (atlas,perturbation,spatial) or PORTS=auto when 50051-50053 are taken.
demo: setup
	$(BIN)/python scripts/demo.py --dir $(DEMO_DIR) $(if $(PORTS),--ports $(PORTS))

bench: setup
	$(BIN)/python -m bench

# Fewer rounds and shorter concurrency runs, for iterating on a lever (~1 min); `make bench` for figures.
bench-quick: setup
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) cytoatlas/table cytoatlas/atlas cytoatlas/perturbation cytoatlas/spatial
