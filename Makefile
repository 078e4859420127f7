# Herald: `make run` (the app with everything it needs) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(PY) scripts/devservices.py exec --

.PHONY: run test lint bench clean-instance

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || sh scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

## run: web + worker + scheduler + dev mail sink, on embedded PostgreSQL/Redis unless configured
run: $(VENV)/.installed
	@HERALD_ENV=$${HERALD_ENV:-development} $(SERVICES) sh scripts/run-dev.sh

## test: the whole suite, browser tests included
test: $(VENV)/.installed
	@sh scripts/ensure-chromium.sh
	$(SERVICES) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app tests bench scripts worker.py wsgi.py
	$(VENV)/bin/ruff format --check app tests bench scripts worker.py wsgi.py
	$(VENV)/bin/lint-imports

## clean-instance: delete the embedded servers' data (with make run stopped); the next run starts afresh
clean-instance:
	rm -rf instance/pgdata instance/redis instance/devmail instance/spool instance/uploads
