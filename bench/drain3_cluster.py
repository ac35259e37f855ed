#!/usr/bin/env python3
"""Drain3 (PyPI ``drain3``) behind the same contract as ``triage cluster``: lines in, one key per line.

The baseline of ``make bench``: Drain3's defaults (sim_th 0.4, depth 4) with the three masks its
README documents (IP, HEX, NUM). Bench-only: triage itself does not depend on drain3.
"""

import sys

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
]


def main() -> int:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    out = sys.stdout
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        out.write(f"{miner.add_log_message(line)['cluster_id']}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
