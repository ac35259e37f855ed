# Two commands set everything up on a fresh machine:
#   make run   - virtualenv + install, then one run on the bundled demo logs (no root needed)
#   make test  - the same install plus test tools, then the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SHARED ?= ../shared
PIP_FLAGS ?= --disable-pip-version-check --no-input -q

.PHONY: run test bench clean help

help:
	@echo "make run    run triage once on the bundled demo logs"
	@echo "make test   run the test suite"
	@echo "make bench  clustering accuracy and speed (needs SHARED=$(SHARED))"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[test,llm]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/triage run --source demo --since 1h --report-json state/last-run.json
	@$(BIN)/python -c "import json; r = json.load(open('state/last-run.json')); \
	print('\n--- digest:', r['digest_path'], '---\n'); print(open(r['digest_path'], encoding='utf-8').read())"

test: $(STAMP)
	$(BIN)/triage --help > /dev/null
	$(BIN)/triage run --help > /dev/null
	@# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
	$(BIN)/python -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "make test: no test was collected" >&2; exit $$rc; }

bench: $(STAMP)
	@test -d $(SHARED)/datasets/loghub-2k || { echo "make bench: $(SHARED)/datasets/loghub-2k not found; pass SHARED=/path/to/shared" >&2; exit 2; }
	$(BIN)/python $(SHARED)/bench/loghub_eval.py --data $(SHARED)/datasets/loghub-2k --cmd "$(CURDIR)/$(BIN)/triage cluster" --repeats 3

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
