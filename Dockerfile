# triage container image: the job only, no model (in the cluster it talks to the node's
# llama-server by URL). Multi-stage: build a wheel, install it into a venv, copy the venv.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY triage ./triage
RUN python -m venv /opt/triage \
 && /opt/triage/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/triage/bin/pip install --no-cache-dir .

FROM python:3.11-slim
COPY --from=build /opt/triage /opt/triage
COPY prompts /opt/triage/prompts
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent triage
ENV PATH=/opt/triage/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRIAGE_LLM__MODE=remote \
    TRIAGE_LLM__PROMPTS_DIR=/opt/triage/prompts
USER 10001:10001
WORKDIR /var/lib/triage
ENTRYPOINT ["triage"]
CMD ["run", "--schedule", "hourly"]
