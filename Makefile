# Two commands set everything up on a fresh machine:
#   make run   - virtualenv + install, then one run on the bundled demo logs (no root needed)
#   make test  - the same install plus test tools, then the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SHARED ?= ../shared
PIP_FLAGS ?= --disable-pip-version-check --no-input -q

.PHONY: run test bench stress clean help debian-packages constraints image image-check

help:
	@echo "make run    run triage once on the bundled demo logs"
	@echo "make test   run the test suite"
	@echo "make bench  clustering accuracy and speed vs Drain3 (needs SHARED=$(SHARED))"
	@echo "make stress 200 random SIGKILLs, 12 killed fresh-state runs, 10,000 property-test examples per target"
	@echo "make constraints  re-pin requirements/*.txt (the image's exact versions) from pyproject.toml"
	@echo "make image  build the container image (docker, else podman, else buildah)"
	@echo "make image-check  run the built image bare, on demo logs and as the hourly CronJob"

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
	@echo "== adversarial Kubernetes corpus (tests/k8s_corpus.py): grouping, speed, memory (triage vs Drain3) =="
	$(BIN)/python bench/k8s_corpus_bench.py
	@echo "== triage run --source file: on 100k entries =="
	$(BIN)/python bench/run_speed.py
	@echo "== triage run --source loki on 200k entries: whole job vs plain fetch-and-decode clients (fake Loki, recorded pages) =="
	$(BIN)/python bench/loki_speed.py
	@echo "== redact stage alone, lines/s (demo and Loghub-2k) =="
	$(BIN)/python bench/redact_speed.py --shared $(SHARED)
	@echo "== 24 hourly runs then the nightly (fake Loki): entries the nightly pulls, counts vs a full re-fetch =="
	$(BIN)/python bench/nightly_pull.py
	@echo "== counting inside Loki: 1M entries in 1h, loki.max_pull=100000, fake Loki 3.x and pre-3.0 =="
	$(BIN)/python bench/loki_count.py

# Longer runs of the crash and property tests (never from .ci/run): 200 SIGKILLs, 10,000 examples a target.
stress: $(STAMP) debian-packages
	TRIAGE_STRESS_KILLS=200 TRIAGE_STRESS_TRIALS=12 $(BIN)/python -m pytest -q -s tests/test_crash.py
	TRIAGE_HYPOTHESIS_PROFILE=stress $(BIN)/python -m pytest -q tests/test_properties.py --hypothesis-show-statistics

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# The image's exact versions: every runtime dependency of pyproject.toml pinned with its hashes, and the
# build backend for triage's own wheel. make test keeps pyproject's ranges; only the Dockerfile uses these.
# Keeps the current pins where pyproject still allows them; `make constraints UPGRADE=--upgrade` takes
# the newest. uv is pinned so that the files' format does not change under us.
UV_VERSION := 0.13.9
UPGRADE ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --system-certs --python-version 3.11 --python-platform linux \
	--generate-hashes --custom-compile-command "make constraints" $(UPGRADE)
constraints: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) uv==$(UV_VERSION)
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt

# The container image (not part of make test: CI has no engine). docker when its daemon answers, else
# podman, else buildah; ENGINE=podman picks one, ENGINE_OPTS go before the subcommand (e.g.
# "--storage-driver vfs"), BUILD_OPTS after it. PYTHON_IMAGE is the base (pin it by digest:
# PYTHON_IMAGE=python:3.11-slim@sha256:...). PIP_CERT_FILE, a CA bundle for a TLS-intercepting proxy,
# goes in as a build secret (default: pip's own `cert` setting on this machine, if any).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= triage:$(VERSION)
PYTHON_IMAGE ?= python:3.11-slim
ENGINE ?=
ENGINE_OPTS ?=
BUILD_OPTS ?=
PIP_CERT_FILE ?= $(or $(PIP_CERT),$(shell $(PYTHON) -m pip config get global.cert 2>/dev/null))
PIP_INDEX_URL ?=
, := ,
# Sets $$engine (and $$why, the reason docker was passed over) in a recipe's shell.
DETECT_ENGINE = engine="$(ENGINE)"; why=""; \
	if [ -z "$$engine" ]; then \
	  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; \
	  else \
	    if command -v docker >/dev/null 2>&1; then why=" (docker: no daemon answers)"; else why=" (no docker)"; fi; \
	    if command -v podman >/dev/null 2>&1; then engine=podman; \
	    elif command -v buildah >/dev/null 2>&1; then engine=buildah; \
	    else echo "make $@: no docker, podman or buildah found" >&2; exit 2; fi; \
	  fi; \
	fi
image:
	@$(DETECT_ENGINE); \
	case "$$engine" in buildah) build=bud ;; docker|podman) build=build ;; \
	  *) echo "make image: ENGINE must be docker, podman or buildah, not $$engine" >&2; exit 2 ;; esac; \
	echo "make image: building $(IMAGE) from $(PYTHON_IMAGE) with $$engine$$why"; \
	set -x; $$engine $(ENGINE_OPTS) $$build $(BUILD_OPTS) -t $(IMAGE) -f Dockerfile \
	  --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty) \
	  $(if $(PIP_INDEX_URL),--build-arg PIP_INDEX_URL=$(PIP_INDEX_URL)) \
	  $(if $(PIP_CERT_FILE),--secret id=pip_cert$(,)src=$(PIP_CERT_FILE)) .

# Runs the built image as a new user and the hourly CronJob would (cronjobs/check-image.sh): bare run,
# --help, a demo run on a read-only root, the CronJob's args (exit 3: no Loki here), no pip, labels.
# RUN_OPTS go to every `run` (e.g. RUN_OPTS="--runtime runc --ulimit nofile=20000:20000").
RUN_OPTS ?=
image-check:
	@$(DETECT_ENGINE); \
	if [ "$$engine" = buildah ]; then echo "make image-check: buildah cannot run images; install podman or docker" >&2; exit 2; fi; \
	echo "make image-check: $(IMAGE) with $$engine$$why"; \
	sh cronjobs/check-image.sh $$engine $(IMAGE) $(RUN_OPTS)
