# Only python3, bash and make are assumed. Everything lands in ./.venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/daily-sip demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) typecheck
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow pyproject's `package-dir` mapping (tasks/ is daily_sip.tasks, flows/ is
# daily_sip.flows, deployments/ is daily_sip.deployments), so it checks a tree of links laid the
# way the package is installed: .typecheck/daily_sip/ holds a link to each entry of daily_sip/
# and one to each mapped folder.
TYPECHECK := .typecheck
TYPED_PACKAGES := daily_sip.tasks daily_sip.flows daily_sip.pacer daily_sip.receiver

typecheck: setup
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/daily_sip
	for entry in daily_sip/*; do \
		case "$$entry" in */__pycache__) ;; *) ln -s "../../$$entry" $(TYPECHECK)/daily_sip/ ;; esac; \
	done
	for folder in tasks flows deployments; do ln -s "../../$$folder" $(TYPECHECK)/daily_sip/$$folder; done
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy $(addprefix -p ,$(TYPED_PACKAGES))

bench: setup
	$(BIN)/python benchmarks/client_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache $(TYPECHECK)
