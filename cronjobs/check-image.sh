#!/bin/sh
# Runs a built image the way a new user and the CronJobs do, and stops at the first surprise.
#   cronjobs/check-image.sh ENGINE IMAGE [extra `run` options, e.g. --runtime runc]
# (`make image-check` calls it.) Needs only the engine: no cluster, no Loki, no model.
set -u
engine=$1 image=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
volume=triage-check-$$
config=$(mktemp -d)
trap '$engine volume rm -f $volume >/dev/null 2>&1; rm -rf "$config"' EXIT
# The CronJob pod: non-root, read-only root, nothing but the state volume and /tmp writable.
pod="--read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges --user 10001:10001"

fail() { echo "check-image: FAIL: $*" >&2; exit 1; }
run() { $engine run --rm "$@"; }
expect() {  # expect CODE what... : run the image, compare its exit code
    wanted=$1; shift
    run "$@" >"$config/out" 2>"$config/err"; got=$?
    [ "$got" = "$wanted" ] || { cat "$config/out" "$config/err" >&2; fail "exit $got, wanted $wanted: $*"; }
}

expect 0 "$@" "$image"
grep -q "loki.url" "$config/out" && grep -q "llm.url" "$config/out" && grep -q "llm.mode" "$config/out" \
  || fail "a bare run does not name loki.url, llm.url and llm.mode"
echo "ok   bare run: exit 0, the help names loki.url, llm.url, llm.mode"
expect 0 "$@" "$image" --help
echo "ok   --help: exit 0"

$engine volume create $volume >/dev/null
expect 0 "$@" $pod -v $volume:/var/lib/triage "$image" run --source demo --since 1h --no-llm
digest=$(sed -n 's/.*-> digest //p' "$config/err")
expect 0 "$@" -v $volume:/var/lib/triage --entrypoint sh "$image" -c "test -s /var/lib/triage/$digest && test -s /var/lib/triage/state/triage.db"
echo "ok   demo run as uid 10001, read-only root, state volume: exit 0, $digest and state/triage.db written"

# The ConfigMap's layout (triage.toml and card.j2 side by side) and the hourly CronJob's env and args.
cp "$here/config/triage.toml" "$here/config/prompts/card.j2" "$config/" && chmod a+rX "$config" "$config"/*
args=$(sed -n 's/^ *args: \[\(.*\)\]$/\1/p' "$here/cronjob-hourly.yaml" | tr -d '",')
[ -n "$args" ] || fail "no args: line in cronjob-hourly.yaml"
expect 3 "$@" $pod -v $volume:/var/lib/triage -v "$config":/etc/triage:ro \
  -e TRIAGE_CONFIG=/etc/triage/triage.toml -e TRIAGE_LLM__PROMPTS_DIR=/etc/triage "$image" $args
grep -q "source loki failed" "$config/err" || fail "exit 3 but not for Loki: $(cat "$config/err")"
grep -q -- "-> digest /var/lib/triage/state/digests/" "$config/err" || fail "no digest in the state volume"
echo "ok   CronJob args ($args), shipped config: exit 3 (Loki unreachable), digest still written"

expect 0 "$@" --entrypoint python3 "$image" -c '
import importlib.metadata as m, importlib.util as u, sys
names = {d.metadata["Name"].lower() for d in m.distributions()}
found = sorted(n for n in ("pip", "setuptools", "wheel") if n in names or u.find_spec(n))
sys.exit(f"present: {found}" if found else 0)'
echo "ok   no pip, setuptools or wheel (neither installed nor importable)"
expect 0 "$@" --entrypoint python3 "$image" -c '
import importlib.metadata as m
print("\n".join(sorted(d.metadata["Name"] + "==" + d.version for d in m.distributions())))'
echo "ok   installed set: $(wc -l <"$config/out") distributions, sha256 $(sha256sum <"$config/out" | cut -c1-16)"

for label in source version revision licenses base.name; do
  value=$($engine image inspect --format "{{ index .Config.Labels \"org.opencontainers.image.$label\" }}" "$image")
  [ -n "$value" ] && [ "$value" != "<no value>" ] || fail "label org.opencontainers.image.$label missing"
  echo "ok   label org.opencontainers.image.$label=$value"
done
echo "ok   size $($engine image inspect --format '{{.Size}}' "$image") bytes"
