"""Value generators for the adversarial Kubernetes corpus (tests/k8s_corpus.py).

Every value class the grouping must treat as a variable, drawn from a seeded ``random.Random``:
generated Kubernetes names (the name generator's alphabet has no vowels and no 0, 1, 3, so a
hash or suffix may carry no digit at all), hex / base62 / UUID ids, hostnames, ``host:port``,
URL paths and query strings, e-mail addresses, free text, and the timestamp headers of the
real log formats. Nothing here knows about triage's grouping code.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

# k8s.io/apimachinery/pkg/util/rand: the alphabet of generateName suffixes and pod-template-hash
KUBE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
KUBE_LETTERS = "bcdfghjklmnpqrstvwxz"
HEX = "0123456789abcdef"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Plain words for free text (search queries, product names): real words, so that a value can look
# exactly like a template word; the generated vocabulary below adds high-cardinality words.
COMMON_WORDS = (
    "red blue green black white running shoes jacket winter summer cheap best new used kids women men "
    "size small large leather cotton wool boots sandals bag backpack phone case charger cable wireless "
    "headphones laptop stand desk chair lamp kitchen knife set coffee maker tea cup gift card under over "
    "fifty hundred free shipping sale discount organic vegan gluten chocolate cookies pasta sauce garden "
    "hose tools drill battery light bulb smart watch band camera lens tripod book novel history science "
    "toy car train puzzle game board outdoor tent sleeping pad water bottle"
).split()

_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["ar", "en", "or", "ul", "is", "an"]


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """``size`` distinct pronounceable pseudo-words (2-4 syllables), the same for a given seed."""
    rng = random.Random(f"vocabulary:{seed}")
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


VOCABULARY = vocabulary(3000)


class Values:
    """The variable parts of log lines. One instance per corpus, driven by its seeded Random."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def choice(self, seq):
        return self.r.choice(seq)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # -- Kubernetes names
    def kube_hash(self, digitless: bool | None = None) -> str:
        """A pod-template-hash (8-10 chars). ``digitless`` forces letters only (as in
        ``search-bqvmgzwhn-cwfpv``); None draws from the real alphabet, where about one hash
        in 25 has no digit anyway."""
        n = self.r.randint(8, 10)
        return self.chars(KUBE_LETTERS if digitless else KUBE_ALPHABET, n)

    def kube_suffix(self, digitless: bool | None = None) -> str:
        return self.chars(KUBE_LETTERS if digitless else KUBE_ALPHABET, 5)

    def node(self) -> str:
        if self.r.random() < 0.5:
            return f"ip-10-0-{self.int(0, 255)}-{self.int(1, 254)}.ec2.internal"
        return f"gke-prod-pool-{self.int(1, 3)}-{self.chars(HEX, 8)}-{self.chars('abcdefghijklmnopqrstuvwxyz', 4)}"

    # -- ids
    def hex(self, n: int, digitless_share: float = 0.1) -> str:
        return self.chars("abcdef" if self.r.random() < digitless_share else HEX, n)

    def base62(self, n: int) -> str:
        return self.chars(BASE62, n)

    def letters(self, n: int) -> str:
        return self.chars("abcdefghijklmnopqrstuvwxyz", n)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def order_id(self) -> str:
        """Order/customer ids as payment APIs print them: a prefix and base62, sometimes digitless."""
        body = self.letters(14) if self.r.random() < 0.15 else self.base62(14)
        return body

    # -- network
    def ip(self, prefix: str = "10.244") -> str:
        return f"{prefix}.{self.int(0, 255)}.{self.int(1, 254)}"

    def port(self) -> int:
        return self.int(1024, 65535)

    def service_host(self, namespace: str) -> str:
        name = self.choice(["cart", "checkout", "inventory", "search", "payments", "users", "catalog", "orders",
                            "shipping", "recommendations", "reviews", "auth"])
        return f"{name}.{namespace}.svc.cluster.local"

    def external_host(self) -> str:
        return self.choice([
            "api.stripe.com", "hooks.slack.com", "s3.eu-west-1.amazonaws.com", "oauth2.googleapis.com",
            f"{self.choice(VOCABULARY)}.{self.choice(['com', 'io', 'net', 'de', 'co.uk'])}",
            f"cdn-{self.letters(self.int(3, 6))}.example.net", f"{self.letters(5)}-{self.int(1, 99)}.internal",
        ])

    def email(self) -> str:
        first, last = self.choice(VOCABULARY), self.choice(VOCABULARY)
        sep = self.choice([".", "_", "", "+"])
        tail = self.choice(["", str(self.int(1, 999)), self.letters(3)]) if sep == "+" else ""
        return f"{first}{sep}{last}{tail}@{self.choice(['gmail.com', 'example.org', 'corp.example.com', 'web.de'])}"

    def slug(self, lo: int = 2, hi: int = 5) -> str:
        return "-".join(self.words(lo, hi).split())

    def url_path(self) -> str:
        """Paths with ids with and without digits, slugs, and query strings of varying keys."""
        kind = self.r.randint(0, 5)
        if kind == 0:
            path = f"/api/v1/orders/{self.int(1, 9_999_999)}"
        elif kind == 1:
            path = f"/api/v2/users/{self.uuid()}/profile"
        elif kind == 2:
            path = f"/products/{self.slug()}"
        elif kind == 3:
            path = f"/api/v1/carts/{self.order_id()}/items"
        elif kind == 4:
            path = f"/static/js/main.{self.hex(8)}.chunk.js"
        else:
            path = f"/search"
        params = []
        for key in self.r.sample(["q", "page", "limit", "sort", "ref", "session", "utm_source"], self.int(0, 3)):
            value = {"q": "+".join(self.words(1, 4).split()), "page": str(self.int(1, 40)),
                     "limit": str(self.choice([10, 20, 50, 100])), "sort": self.choice(["price", "-created", "name"]),
                     "ref": self.letters(6), "session": self.base62(20), "utm_source": self.choice(VOCABULARY)}[key]
            params.append(f"{key}={value}")
        return path + ("?" + "&".join(params) if params else "")

    # -- text
    def words(self, lo: int, hi: int) -> str:
        pool = COMMON_WORDS if self.r.random() < 0.6 else VOCABULARY
        return " ".join(self.r.choice(pool) for _ in range(self.r.randint(lo, hi)))

    def duration(self) -> str:
        return self.choice([f"{self.int(101, 999)}.{self.int(0, 999):03d}ms", f"{self.int(1, 9)}.{self.int(0, 99):02d}s",
                            f"{self.int(100, 999)}ms"])


# -- timestamp headers of real formats (all UTC)

def dt(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC)


def iso_z(ts_ns: int, digits: int = 3) -> str:
    d = dt(ts_ns)
    frac = f"{ts_ns % 1_000_000_000:09d}"[:digits]
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "") + "Z"


def klog_header(level: str, ts_ns: int, thread: int, source: str) -> str:
    """klog: ``Lmmdd hh:mm:ss.uuuuuu threadid file:line] `` (thread id right-aligned, width 7)."""
    d = dt(ts_ns)
    return f"{level}{d:%m%d %H:%M:%S}.{(ts_ns // 1000) % 1_000_000:06d} {thread:7d} {source}] "


def millis(ts_ns: int) -> str:
    return f"{(ts_ns // 1_000_000) % 1000:03d}"
