# triage container image: the job only, no model (in the cluster it talks to the node's
# llama-server by URL). Build with `make image` (docker, else podman, else buildah).
#
# The base is a build argument. For a reproducible image pin it by digest, e.g.
#   make image PYTHON_IMAGE=python:3.11-slim@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11-slim` or `skopeo inspect docker://python:3.11-slim`
# print the digest). Any Debian-like image with python3.11 and its venv module works.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a venv holding exactly the pinned packages, then without the tools that installed them
FROM ${PYTHON_IMAGE} AS build
# Where pip looks; a proxy goes in the predefined HTTPS_PROXY build argument. Behind a TLS-intercepting
# proxy give its CA bundle as the build secret `pip_cert` (make image PIP_CERT_FILE=...): a secret is
# not stored in any layer.
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/runtime.txt requirements/build.txt requirements/
# Every runtime dependency at the exact version and hash of requirements/runtime.txt, no resolver
# (--no-deps) so nothing unpinned can come in; setuptools only to build triage's own wheel.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -m venv /opt/triage \
 && /opt/triage/bin/python -m pip install --require-hashes --no-deps --only-binary :all: \
        -r requirements/runtime.txt -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY triage ./triage
# triage itself offline with the pinned backend; `pip check` proves the pins are a complete set;
# then pip, setuptools and wheel leave the venv (sqlite-utils lists pip for its `install` command,
# which triage never runs).
RUN /opt/triage/bin/python -m pip install --no-deps --no-build-isolation --no-index . \
 && /opt/triage/bin/python -m pip check \
 && /opt/triage/bin/python -m pip uninstall -y -q pip setuptools wheel \
 && rm -rf /opt/triage/bin/pip* /opt/triage/bin/wheel /src

# ---- runtime: the base, minus its own pip/setuptools, plus the venv and the prompts
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/triage
LABEL org.opencontainers.image.title="triage" \
      org.opencontainers.image.description="Turns a window of Kubernetes error logs into a short, trustworthy digest." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# The base interpreter's pip, setuptools and wheel (and ensurepip's bundled copies): not needed to run
# and flagged by scanners. Found through Python's own paths, so python:3.11-slim (/usr/local) and a
# Debian python3 (/usr/lib/python3) are both cleaned.
RUN set -eu; \
    for dir in $(python3 -c 'import site, sysconfig; print(" ".join({*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"] + "/ensurepip/_bundled"}))') /usr/share/python-wheels; do \
      rm -rf "$dir"/pip "$dir"/pip-* "$dir"/setuptools "$dir"/setuptools-* "$dir"/pkg_resources \
             "$dir"/_distutils_hack "$dir"/distutils-precedence.pth "$dir"/wheel "$dir"/wheel-*; \
    done; \
    rm -f /usr/local/bin/pip* /usr/bin/pip*; \
    useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin triage; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/triage
COPY --from=build /opt/triage /opt/triage
COPY prompts /opt/triage/prompts
# llm.mode remote: the image carries no model. The environment beats a config file, so choose another
# mode with TRIAGE_LLM__MODE (e.g. off), not in the file.
ENV PATH=/opt/triage/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRIAGE_LLM__MODE=remote \
    TRIAGE_LLM__PROMPTS_DIR=/opt/triage/prompts
USER 10001:10001
# The state volume. Without a config the state is state/triage.db and the digests state/digests, both
# relative to here: /var/lib/triage/state/..., the same paths cronjobs/config/triage.toml names.
WORKDIR /var/lib/triage
ENTRYPOINT ["triage"]
# Bare `docker run IMAGE`: the help, with the settings a run needs; exit 0.
CMD ["--help"]
