"""The digest (pure): what the cards say, rendered for each channel.

``model`` (what a digest is made from), ``times`` (human times), ``heading`` (card headings),
``varies`` (what varies in a cluster), ``explore`` (Grafana links), ``day`` (the nightly's day),
``escape`` (per-target escaping), and the renderers: ``markdown``, ``plain`` (text/plain e-mail),
``html`` (the HTML e-mail) and ``slack_blocks`` (Block Kit).
"""

from triage.digest.day import sparkline
from triage.digest.escape import clean, code_block, code_span
from triage.digest.heading import shorten as card_title
from triage.digest.markdown import render_digest
from triage.digest.model import DayItem, DayTrend, DigestInput, NightlyFacts

__all__ = ["DayItem", "DayTrend", "DigestInput", "NightlyFacts", "card_title", "clean", "code_block", "code_span",
           "render_digest", "sparkline"]
