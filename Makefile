# Two commands set everything up on a fresh machine:
#   make run   - virtualenv + install, then one run on the bundled demo logs (no root needed)
#   make test  - the same install plus test tools, then the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SHARED ?= ../shared
PIP_FLAGS ?= --disable-pip-version-check --no-input -q

.PHONY: run test bench stress clean help debian-packages

help:
	@echo "make run    run triage once on the bundled demo logs"
	@echo "make test   run the test suite"
	@echo "make bench  clustering accuracy and speed vs Drain3 (needs SHARED=$(SHARED))"
	@echo "make stress 200 random SIGKILLs, 12 killed fresh-state runs, 10,000 property-test examples per target"

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

# The Pushgateway and promtool the tests start on 127.0.0.1; installed only when missing, and only as root.
debian-packages:
	@missing=""; \
	command -v prometheus-pushgateway >/dev/null 2>&1 || missing="$$missing prometheus-pushgateway"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make test: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "make test: needs the Debian packages$$missing (run as root once, or install them)" >&2; exit 2; \
	  fi; \
	fi

test: $(STAMP) debian-packages
	$(BIN)/triage --help > /dev/null
	$(BIN)/triage run --help > /dev/null
	@# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
	$(BIN)/python -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "make test: no test was collected" >&2; exit $$rc; }

bench: $(STAMP)
	@test -f $(SHARED)/bench/loghub_eval.py || { echo "make bench: $(SHARED)/bench/loghub_eval.py not found; pass SHARED=/path/to/shared" >&2; exit 2; }
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[bench]'
	@echo "== grouping accuracy, Loghub-2k (triage vs Drain3) =="
	$(BIN)/python bench/loghub_compare.py --shared $(SHARED)
	@echo "== clustering speed and memory, make_big.py file (triage vs Drain3) =="
	$(BIN)/python bench/speed.py --shared $(SHARED)
	@echo "== triage run --source file: on 100k entries =="
	$(BIN)/python bench/run_speed.py

# Longer runs of the crash and property tests (never from .ci/run): 200 SIGKILLs, 10,000 examples a target.
stress: $(STAMP) debian-packages
	TRIAGE_STRESS_KILLS=200 TRIAGE_STRESS_TRIALS=12 $(BIN)/python -m pytest -q -s tests/test_crash.py
	TRIAGE_HYPOTHESIS_PROFILE=stress $(BIN)/python -m pytest -q tests/test_properties.py --hypothesis-show-statistics

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
