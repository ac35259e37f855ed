"""What a channel message says, channel-neutral: built in ``triage.digest.cards``, rendered per channel.

Kept as the delivery side's import point: ``Card``, ``Outgoing``, ``build_outgoing`` and the
Grafana Explore link builders (a cluster's lines; a roll-up's namespaces).
"""

from triage.digest.cards import Card, CardSummary, Outgoing, build_outgoing, headline
from triage.digest.explore import explore_namespaces_url, explore_url

__all__ = ["Card", "CardSummary", "Outgoing", "build_outgoing", "explore_namespaces_url", "explore_url", "headline"]
