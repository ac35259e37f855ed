"""Re-score a saved `triage eval summaries --json` file with the current (strict) matching.

    .venv/bin/python bench/rescore_eval.py bench/out/eval-before.json [--set eval/summaries.jsonl]

The answers stored in the file are scored again by ``triage.evaluate.score``, so a run made before the
matching changed can be compared with one made after, without asking the model twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from triage.evaluate import DEFAULT_SET, load_set, score


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--set", dest="set_path", type=Path, default=DEFAULT_SET)
    args = parser.parse_args()
    cases = {case["name"]: case for case in load_set(args.set_path)}
    saved = json.loads(args.results.read_text())
    component = cause = valid = 0
    for result in saved["cases"]:
        if not result.get("answer"):
            continue
        valid += 1
        names_component, names_cause = score(result["answer"], cases[result["name"]])
        component += names_component
        cause += names_cause
        print(f"{result['name']:28s} component={'y' if names_component else 'n'} cause={'y' if names_cause else 'n'}  "
              f"{result['answer']['likely_cause'][:90]}")
    total = len(saved["cases"])
    print(json.dumps({"cases": total, "valid_json_rate": round(valid / total, 3),
                      "names_component_rate": round(component / total, 3),
                      "names_cause_rate": round(cause / total, 3),
                      "latency_s_mean": saved["summary"]["latency_s_mean"],
                      "latency_s_p50": saved["summary"]["latency_s_p50"]}, indent=2))


if __name__ == "__main__":
    main()
