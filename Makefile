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
# The random tests `make test-reliability` runs again with large samples.
SAMPLED_TESTS := tests/test_hostile_input.py tests/test_differential.py tests/test_typed_differential.py

setup: $(STAMP) $(GENERATED)
	@# The services, tests and bench run the `cytoatlas` the virtualenv imports; an editable install
	@# made from another checkout (a worktree sharing this .venv) would run that one's code instead.
	@(cd / && $(CURDIR)/$(BIN)/python -c "import cytoatlas, pathlib, sys; \
		sys.exit(pathlib.Path(cytoatlas.__file__).resolve().parents[1] != pathlib.Path('$(CURDIR)').resolve())") \
		|| (echo "$(VENV) imported cytoatlas from another checkout: installing this one" \
			&& $(BIN)/pip install --quiet --no-deps -e .)

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

# The long runs, marked `reliability` wherever they are (left out of `make test`: live demo stacks,
# load, every documented command, the mutation run), then the random tests with large samples.
# Each test prints FIGURE lines; pytest-timeout bounds every test.
test-reliability: setup
	$(BIN)/python -m pytest -q -s -m reliability --timeout 3600
	CYTOATLAS_DIFFERENTIAL_EXAMPLES=2000 CYTOATLAS_HOSTILE_EXAMPLES=1000 CYTOATLAS_HOSTILE_PER_RPC=0 \
		CYTOATLAS_TYPED_EXAMPLES=200 \
		$(BIN)/python -m pytest -q -s --timeout 600 $(SAMPLED_TESTS)

demo: setup
	$(BIN)/python scripts/demo.py --dir $(DEMO_DIR) $(if $(PORTS),--ports $(PORTS))

bench: setup
	$(BIN)/python -m bench

# Fewer rounds and shorter concurrency runs, for iterating on a lever (~1 min); `make bench` for figures.
bench-quick: setup
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) $(DEMO_DIR) cytoatlas/table cytoatlas/atlas cytoatlas/perturbation cytoatlas/spatial cytoatlas/search
