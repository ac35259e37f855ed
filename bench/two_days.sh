#!/bin/bash
# Two simulated days of the demo source: hourly runs every hour, a nightly run at 06:00 each day.
set -e
T=$(realpath "${TRIAGE:-.venv/bin/triage}"); out=${OUT:-bench/out/two-days}
rm -rf "$out"; mkdir -p "$out"; cd "$out"
day0=$(date -u -d "2026-11-21T06:00:00Z" +%s)
for h in $(seq 0 47); do
  from=$(( (day0 + h*3600) * 1000000000 )); to=$(( from + 3600*1000000000 ))
  $T run --source demo --schedule hourly --from $from --to $to --no-llm --state s.db --digest-dir d 2>/dev/null || true
  if [ $(( (h+1) % 24 )) -eq 0 ]; then
    nf=$(( to - 86400*1000000000 ))
    $T run --source demo --schedule nightly --from $nf --to $to --no-llm --state s.db --digest-dir d 2>/dev/null || true
  fi
done
