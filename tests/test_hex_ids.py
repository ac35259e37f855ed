"""Hex ids are values whatever mix of letters and digits they hold, wherever a component prints them.

UUIDs (request ids, Kubernetes object UIDs, Celery task ids), W3C trace and span ids, git commits,
container ids and image digests are random hex: about one random UUID in 125 has an all-digit last
group or three all-digit middle ones. Masking that reads such groups as a number (a card-like run, a number
before its unit, a generated name's segment) splits one problem by the letters of its ids, and the shape
cache, which keys a message by its digits only, must never give one id's tokens to another's message.
The messages below are modelled on kubelet, containerd, OpenTelemetry logfmt, Envoy, Celery, syslog and
deploy tools; every id in them is drawn again with its groups all digits, all letters or mixed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from triage.cluster.masking import tokenize
from triage.cluster.miner import ShapeTokens

_TEMPLATES = [
    'E1201 06:52:32.153219    1234 pod_workers.go:1298] "Error syncing pod, skipping" '
    'err="failed to \\"StartContainer\\"" pod="shop/cart-0" podUID="{uuid}"',
    'Error syncing pod {uuid} ("cart-0_shop({uuid})"), skipping: failed to "KillPodSandbox"',
    'RemoveContainer containerID="containerd://{hex64}" failed: rpc error: code = NotFound',
    'trace_id={hex32} span_id={hex16} upstream reset before headers',
    "failed to load cart cart-{uuid}",
    "job sync-{uuid} failed after 3 attempts",
    "lookup of order {uuid} ms budget exceeded",
    "request {uuid} took 120 ms",
    "GET /api/v1/carts/{uuid}/items 500",
    "[{uuid}] upstream connect error or disconnect/reset before headers",
    "Task tasks.sync_inventory[{uuid}] raised unexpected: TimeoutError()",
    "Dec  1 06:52:32 {uuid}, worker stopped",
    "deploy of revision {hex40} failed: image sha256:{hex64} not found",
    "id={uuid} attempt=3 x-request-id: {UUID} status=503",
    "ref -:{uuid} and ={uuid} rejected",
    # a quoted run a few characters past masking's 400-character limit: an id read as a card-like run
    # would shorten it below the limit for some ids and not others
    'query "' + "a " * 183 + '{uuid}" failed',
]

_GROUP = st.sampled_from(["digits", "letters", "mixed"])


@st.composite
def _hex(draw, length: int) -> str:
    kind = draw(_GROUP)
    alphabet = {"digits": "0123456789", "letters": "abcdef", "mixed": "0123456789abcdef"}[kind]
    return draw(st.text(alphabet, min_size=length, max_size=length))


@st.composite
def _ids(draw) -> dict[str, str]:
    uuid = "-".join(draw(_hex(n)) for n in (8, 4, 4, 4, 12))
    return {"uuid": uuid, "UUID": uuid.upper(), "hex16": draw(_hex(16)), "hex32": draw(_hex(32)),
            "hex40": draw(_hex(40)), "hex64": draw(_hex(64))}


@given(st.sampled_from(_TEMPLATES), _ids(), _ids())
def test_ids_mask_alike_whatever_their_letters_and_digits(template, first, second):
    one, other = template.format(**first), template.format(**second)
    assert tokenize(one) == tokenize(other), (one, other)


@given(st.sampled_from(_TEMPLATES), _ids(), _ids())
def test_the_shape_cache_gives_each_message_its_own_tokens(template, first, second):
    cache = ShapeTokens()
    for message in (template.format(**first), template.format(**second)):
        assert cache(message) == tokenize(message)
