"""Masking: turn a message into tokens with the variable parts replaced by ``<*>`` (pure).

What counts as a value is decided by the shape of a token, never by the value of its digits,
so two lines that differ only in their digits always get the same tokens (the shape cache of
``triage cluster`` relies on it, and a property test checks it):

- a token that holds a digit or an ``@`` is a value; only its key and its edge punctuation
  survive: ``size=123,`` becomes ``size=<*>,``, ``(10.0.0.1:80)`` becomes ``(<*>)``;
- values that carry no digit: generated Kubernetes names keep their owner
  (``search-bqvmgzwhn-cwfpv`` -> ``search-<*>``; an owner's own digits are values:
  ``http-nio-8080-exec-18`` -> ``http-nio-<*>-exec-<*>``), random-looking words (hashes and ids from
  alphabets without vowels, mixed-case base62), host names, URLs, e-mail addresses,
  redaction placeholders (alone or inside a token), a quoted single word, and a whole path when
  one of its segments is an id or it has a query string;
- hex ids (UUIDs, trace and span ids, digests) are marked as values before anything else reads the
  text, so their letters never matter either (``mark_hex_ids``);
- values that span spaces become one token before splitting: dates (``Mon Jun 20 03:40:59
  2005``), numbers with units (``5.2 KB``), card-like digit groups, a bracketed or braced list
  of any length (``[sku-1, sku-2]`` -> ``<*>``); a quoted run of words (``"select a from b"``)
  is kept as one token so that free text of any length takes one position, which the miner
  learns to be variable;
- an empty value (``()``, ``key=``) is masked like a full one, and a run of adjacent values is
  one value;
- two rules look at a token's neighbours: a DNS query type beside a DNS name or the class ``IN``
  is a value (``example.org. AAAA:``), and an enumeration of comma-separated clauses of one shape
  (``Service "a" is invalid, ConfigMap "a" is invalid``) is one clause, however many there are.

Per-token checks instead of one big regex over the line keep this cheap.
"""

from __future__ import annotations

import re
from functools import lru_cache

WILDCARD = "<*>"
MASKING_VERSION = "m7"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_MONTH_DATE = rf"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? +)?{_MONTH} +\d{{1,2}},? +\d{{1,2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?: +\d{{4}})?"
# Every other spanning value starts with a digit at a word boundary. Each branch below is written
# without that first digit: the compiled pattern starts with a plain \d, which lets the regex engine
# skip to the next digit in C instead of trying lookarounds at every character (2x faster, the same
# matches on the corpus and Loghub).
_AFTER_FIRST_DIGIT = "|".join(f"(?:{pattern})" for pattern in (
    # Redis and RFC 1123 dates: "01 Dec 2026 06:52:32.153"
    rf"\d? {_MONTH} \d{{4}} \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?",
    # "2026-11-23 07:00:00,123", "2026/11/23 07:00:00 +0100"
    r"\d{3}[-/]\d{2}[-/]\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?: ?(?:Z|UTC|[+-]\d{2}:?\d{2}))?",
    # "[20/Jun/2005:03:40:59 +0000]"
    rf"\d?/{_MONTH}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?: [+-]\d{{4}})?",
    # a number printed in groups, as card numbers are ("4111 1111 1111 1111", "3782-822463-10005"): one
    # value, like the one placeholder redaction leaves where the groups pass the Luhn check
    r"\d{3}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?\b|\d{3}[ -]\d{6}[ -]\d{4,5}\b",
    # a number with its unit is one value: "5.2 KB", "93.0 B", "120 ms"
    r"\d*(?:\.\d+)? (?:[KMGTP]i?B|[kKMGT]b|B|bytes|ms|us|µs|ns|s|sec|secs|seconds|mins?|minutes|hours?|days?)\b",
))
_DIGIT_FIRST = rf"\d(?<!\w\d)(?:{_AFTER_FIRST_DIGIT})"  # (?<!\w\d): no word character before the digit
# The ctime and syslog dates ("Mon Jun 20 03:40:59 2005", "Jun 20 03:40:59") start with a word, and
# their branch costs as much as all the others: it runs only on messages that hold a month's name.
_SPANNING_DIGITS = re.compile(_DIGIT_FIRST)
_SPANNING = re.compile(rf"(?:{_MONTH_DATE})|{_DIGIT_FIRST}")
_MONTH_NAME = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")
# A list or a structure printed inline, of any length: "[sku-1, sku-2]", "{a: 1, b: 2}", "[]".
# Innermost first; applied until nothing changes, so nested ones become one value too.
_LIST = re.compile(r"\[[^\[\]\n]*,[^\[\]\n]*\]|\{[^{}\n]*[,:= ][^{}\n]*\}|\{\}|\[\]")
# A quoted run that starts and ends at a token boundary (so "can't" and "it's" are not quotes).
# The boundary before the opening quote is checked behind it (a fixed-width look-behind over the
# character before and the quote), so the pattern starts with the quote and re scans for quote
# characters instead of trying a look-behind at every position: 2.4x faster, same matches.
_QUOTED = re.compile(r"""("(?<![^\s=:(\[,]")(?:[^"\\\n]|\\.){0,400}"|'(?<![^\s=:(\[,]')[^'\n]{0,400}')(?=$|[\s,;:)\].!?}])""")
# Generated Kubernetes names: the ReplicaSet hash and the pod suffix come from the alphabet
# "bcdfghjklmnpqrstvwxz2456789" (no vowels), CronJob pods carry the scheduled minute, StatefulSet
# pods an ordinal. A segment is generated when it is all digits, or 5-10 lower-case letters and
# digits with a digit or without a vowel; the owner is what is left.
_GENERATED_SEGMENT = re.compile(r"^(?:\d+|(?=[a-z0-9]{5,10}$)(?:.*\d.*|[b-df-hj-np-tv-xz]+))$")
# Hex ids: UUIDs (request ids, Kubernetes object UIDs, Celery task ids) and runs of 16 or more hex
# characters (W3C trace and span ids, git commits, container ids, image digests), not inside a longer
# word. Random hex, so any of their groups may be all digits: read as text, such a group is a card-like
# run, a number before its unit ("...-123456789012 ms") or a generated name's segment, and one problem
# splits by the letters of its ids. So an id is marked as a value before any other rule reads the text;
# what masking makes of a message then depends on where its ids are, never on their letters, and the
# shape cache can key it by its marked text's digits. The pattern starts with the character class (and
# checks the boundary behind it) so that re skips to hex characters instead of trying a look-behind at
# every position.
_HEX = "[0-9a-fA-F]"
_HEX_ID = re.compile(rf"{_HEX}(?<![0-9A-Za-z]{_HEX})(?:{_HEX}{{7}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{15,}})"
                     r"(?![0-9A-Za-z])")
# Every id holds a run of 12 hex characters (a UUID's last group): a C-speed test that a message may
# hold one. Hex characters become "h", everything else (UTF-8 continuation bytes included) a space.
_HEX_CLASSES = bytes(ord("h") if chr(byte) in "0123456789abcdefABCDEF" else ord(" ") for byte in range(256))
_HEX_RUN = b"h" * 12
_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w.\-]*[=:])(.*)$")
_PLACEHOLDER = re.compile(r"^([^\w<]*)<[a-z][a-z_-]*>([^\w]*)$")  # what redaction leaves: "<redacted>", "(<email>),"
# What redaction (triage/redact.py) leaves inside a value: "blk_-<card>", "token=<redacted>". Named,
# so that code such as Java's "<init>" frames is not taken for one. The closing ">" may have been
# stripped with the edge punctuation.
_INNER_PLACEHOLDER = re.compile(r"<(?:redacted|card|email|ip|jwt|[a-z]+(?:-[a-z]+)*-(?:key|key-id|token|secret))(?:>|$)")
# Top-level and cluster-internal domains: a dotted name ending in one is a host (a value), while
# dotted names that start with one are code (com.example.Foo, io.netty.Channel) and stay words.
_HOST_SUFFIXES = frozenset((
    "com", "net", "org", "io", "dev", "app", "cloud", "local", "localdomain", "internal", "lan", "corp", "home",
    "svc", "cluster", "example", "test", "invalid", "edu", "gov", "mil", "int", "info", "biz", "co", "uk", "de",
    "fr", "nl", "jp", "cn", "ru", "br", "au", "ca", "eu", "us", "ch", "se", "es", "it", "kr", "arpa",
))
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
# What the Kubernetes API accepts as an object name (DNS-1123 subdomain): the only text a generated
# name's owner can be. "sync_inventory[9eb87d8c-7dba-443f-a348-495061914501" is a value with a prefix.
_DNS_1123_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$")
# DNS resource record types (the IANA registry's common mnemonics), a value where a DNS server or
# resolver logs a query: CoreDNS's errors plugin ("2 example.org. AAAA: read udp ..."), its log plugin
# and Unbound ("AAAA IN example.org."), BIND's query log ("example.org IN A +E"), dnsmasq ("query[A]").
_RR_TYPES = frozenset((
    "A", "AAAA", "ANY", "AXFR", "CAA", "CNAME", "DNAME", "DNSKEY", "DS", "HINFO", "HTTPS", "IXFR", "MX",
    "NAPTR", "NS", "NSEC", "NSEC3", "OPT", "PTR", "RRSIG", "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT",
))
_RR_TOKENS = frozenset(t + punct for t in _RR_TYPES for punct in ("", ":", ","))
_DNS_QUERY_IN_TEXT = re.compile(r"\w\[[A-Z][A-Z0-9]*\]")
_DNS_QUERY_BRACKET = re.compile(r"^(\w+)\[([A-Z0-9]+)\]([^\w]*)$")
_CLAUSE_MIN, _CLAUSE_MAX = 3, 8  # tokens in one clause of an enumeration
_DIGITS = frozenset("0123456789")
_DIGIT_RUN = re.compile(r"\d+")
_VOWELS = frozenset("aeiouyAEIOUY")
_EDGE_PUNCT = "\"'()[]{}<>,;:.!?`"
_EMPTY_PAIRS = ("()", "[]", "{}", '""', "''")
# Inside masking a spanning value is this private-use character, so that stripping punctuation off a
# token can never cut a "<*>" in half; tokens carry WILDCARD once masked. A quoted run keeps its
# spaces as _SPACE (not white space, so split() leaves it one token); template text shows them as
# DISPLAY_SPACE, a no-break space that split(" ") leaves alone too.
_MARK = "\ue000"
_SPACE = "\ue001"
DISPLAY_SPACE = "\u00a0"


def _has_digit(text: str) -> bool:
    """A digit, or a placeholder redaction left inside a value ("blk_-<card>"): the mark of a value."""
    return not _DIGITS.isdisjoint(text) or ("<" in text and _INNER_PLACEHOLDER.search(text) is not None)


def mask_text(message: str) -> str:
    if _has_digit(message):
        # every spanning value holds a digit
        spanning = _SPANNING if _MONTH_NAME.search(message) else _SPANNING_DIGITS
        message = spanning.sub(_MARK, message)
    if "[" in message or "{" in message:
        for _ in range(4):
            masked = _LIST.sub(_MARK, message)
            if masked == message:
                break
            message = masked
    if '"' in message or "'" in message:
        message = _QUOTED.sub(_quoted_token, message)
    return message


def _quoted_token(match: re.Match[str]) -> str:
    run = match.group(1)
    quote, inner = run[0], run[1:-1]
    words = inner.split()
    if len(words) <= 1:
        # One quoted word is a name put in quotes because it is one: a user, a table, an image, a vhost.
        return quote + WILDCARD + quote if words else run
    return quote + _SPACE.join(_in_context([mask_token(word) for word in words], inner)) + quote


@lru_cache(maxsize=1 << 14)
def mask_token(token: str) -> str:
    # Pure, and the words of a log repeat line after line: a bounded memo saves most of the work.
    if token.isalpha():
        return WILDCARD if _random_word(token) else token  # the common case: a plain word
    placeholder = _PLACEHOLDER.match(token)
    if placeholder:
        return f"{placeholder.group(1)}{WILDCARD}{placeholder.group(2)}"
    core = token.strip(_EDGE_PUNCT)
    if not core:
        if token in _EMPTY_PAIRS or token.endswith(_EMPTY_PAIRS):
            return token[:-1] + WILDCARD + token[-1]  # an empty value: "()", '""'
        return token
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    if _SPACE in core:
        return token  # a quoted run, masked word by word already
    if "://" in core:
        return f"{head}{WILDCARD}{tail}"
    keyed = _KEY_PREFIX.match(token[start:])  # the value keeps its own trailing punctuation
    if keyed and _MARK not in keyed.group(1) and not _has_digit(keyed.group(1)):
        key, value = keyed.groups()
        if not value:
            if key.endswith("="):
                return f"{head}{key}{WILDCARD}"  # "key=" stands where other lines have a value
        elif not value.strip(_EDGE_PUNCT):
            return f"{head}{key}{mask_token(value)}"
        elif key.endswith(":") and "." in key and _is_host(key[:-1]):
            return f"{head}{WILDCARD}{tail}"  # host:port
        elif key.endswith("=") or _has_digit(value) or not value.strip(_EDGE_PUNCT).isalpha():
            return f"{head}{key}{mask_token(value)}"
    # after the key: "pod=web-x_ns(<a spanning value>)" keeps "pod=" whether the value's hex starts with a
    # digit (a spanning value, marked) or a letter
    if _MARK in core or "@" in core:
        return f"{head}{WILDCARD}{tail}"
    if "/" in core and not core.startswith("<"):
        return f"{head}{_mask_path(core)}{tail}"
    if "-" in core and core[0].isalpha():
        owner = _generated_name_owner(core)
        if owner is not None:
            if not _DIGITS.isdisjoint(owner):
                # an owner's own digits are values too ("http-nio-8080-exec-18" -> "http-nio-<*>-exec-<*>",
                # "oauth2-proxy-5d8f7b9c6-x2k9p" -> "oauth<*>-proxy-<*>"): kept, two lines would differ by
                # their digits, and the shape cache would give one of them the other's tokens
                owner = _DIGIT_RUN.sub(WILDCARD, owner)
            return f"{head}{owner}-{WILDCARD}{tail}"
    if "." in core and _is_host(core):
        return f"{head}{WILDCARD}{tail}"
    if _has_digit(core) or _random_word(core.replace("_", "").replace("-", "").rstrip("=")):
        return f"{head}{WILDCARD}{tail}"
    if token.endswith(_EMPTY_PAIRS) and len(token) >= 3 and token[-3] in "( [{=:":
        return token[:-1] + WILDCARD + token[-1]  # an empty value after a key: "key=()"
    return token


def _random_word(word: str) -> bool:
    """Ids without digits: lower-case runs without a vowel (Kubernetes hashes), mixed-case base62."""
    if len(word) < 6 or not word.isalpha():
        return False
    if word.islower():
        return _VOWELS.isdisjoint(word)
    if len(word) < 10 or word.isupper():
        return False
    switches = sum(1 for a, b in zip(word, word[1:]) if a.isupper() != b.isupper())
    vowels = sum(1 for ch in word if ch in _VOWELS)
    return switches * 2 >= len(word) and vowels * 5 < len(word)


def _generated_name_owner(core: str) -> str | None:
    if not _DNS_1123_NAME.match(core):
        return None
    parts = core.split("-")
    cut = len(parts)
    while cut > 1 and _GENERATED_SEGMENT.match(parts[cut - 1]):
        cut -= 1
    if cut == len(parts) or not parts[0][:1].isalpha() or not parts[cut - 1][-1:].isalnum():
        return None  # "blk_-123" is a value with a prefix, not a generated name
    return "-".join(parts[:cut])


def _is_host(core: str) -> bool:
    """A DNS name: it ends in a generic or cluster-internal domain, or in a two-letter country code
    below a generic second level (edu.pl, co.uk). A bare country code is left alone: as many dotted
    words end in one that are code or settings (mapred.task.id, app.py, run.sh)."""
    name = core.rsplit(":", 1)[0] if ":" in core else core
    labels = name.lower().rstrip(".").split(".")
    if len(labels) < 2 or labels[0] in _HOST_SUFFIXES or not all(_HOST_LABEL.match(label) for label in labels):
        return False
    return labels[-1] in _HOST_SUFFIXES or (len(labels) >= 3 and len(labels[-1]) == 2 and labels[-1].isalpha()
                                             and labels[-2] in _HOST_SUFFIXES)


def _mask_path(core: str) -> str:
    """A URL or file path with an id, hash or slug among its segments, or a query string, is a value."""
    path, question, _query = core.partition("?")
    first = path.split("/", 1)[0]
    if question or ("." in first and _is_host(first)) or any(_has_digit(segment) or _random_word(segment)
                       or _MARK in segment or "@" in segment or (segment[:1].isalpha() and "-" in segment
                                                                 and _generated_name_owner(segment))
                       for segment in path.split("/")):
        return WILDCARD
    return core


def mark_hex_ids(message: str) -> str:
    """The message with each hex id (``_HEX_ID``) replaced by the mark of a value: the text that
    ``tokenize_marked`` masks, and that the shape cache keys by its digits."""
    if _HEX_RUN in message.encode("utf-8", "surrogatepass").translate(_HEX_CLASSES):
        return _HEX_ID.sub(_MARK, message)
    return message


def tokenize(message: str) -> list[str]:
    """Tokens with values masked; a run of adjacent values is one value ("pid 23 tid 7394", "2 3 5 7",
    a number that redaction turned into one placeholder or left as two), so how a value was split or
    joined does not change the template."""
    return tokenize_marked(mark_hex_ids(message))


def tokenize_marked(message: str) -> list[str]:
    """``tokenize`` of a message whose hex ids are marked already (``mark_hex_ids``)."""
    masked = mask_text(message)
    tokens = _in_context([mask_token(token) for token in masked.split()], masked)
    if tokens.count(WILDCARD) > 1:
        tokens = [token for index, token in enumerate(tokens)
                  if token != WILDCARD or index == 0 or tokens[index - 1] != WILDCARD]
    return tokens


def _in_context(tokens: list[str], text: str) -> list[str]:
    """The rules that look at a token's neighbours (both see only masked tokens, so digits never matter);
    ``text`` is what the tokens were split from, for cheap checks of whether a rule can apply."""
    if not _RR_TOKENS.isdisjoint(tokens) or ("[" in text and _DNS_QUERY_IN_TEXT.search(text)):
        tokens = _dns_query_types(tokens)
    if len(tokens) >= 7 and "," in text:
        commas = [index for index, token in enumerate(tokens) if token[-1] == ","]
        if commas and _may_enumerate(tokens, commas):
            tokens = _collapse_enumerations(tokens, commas)
    return tokens


def _dns_query_types(tokens: list[str]) -> list[str]:
    out = list(tokens)
    for index, token in enumerate(tokens):
        if token in _RR_TOKENS:
            before = tokens[index - 1] if index else ""
            after = tokens[index + 1] if index + 1 < len(tokens) else ""
            # next to a name written with its root dot ("example.org.", "<*>.") or the class IN
            if (before.endswith(".") and (before == WILDCARD + "." or _is_host(before))) or before == "IN" or after == "IN":
                out[index] = WILDCARD + token[len(token.rstrip(":,")):]
        elif "[" in token:
            query = _DNS_QUERY_BRACKET.match(token)
            if query and query.group(2) in _RR_TYPES:
                out[index] = f"{query.group(1)}[{WILDCARD}]{query.group(3)}"
    return out


def _clause_sizes(commas: list[int], limit: int):
    """(comma, the sizes a clause after it may have): a clause never runs past the next comma."""
    for number, comma in enumerate(commas):
        gap = commas[number + 1] - comma if number + 1 < len(commas) else limit
        yield comma, range(_CLAUSE_MIN, min(gap, _CLAUSE_MAX) + 1)


def _may_enumerate(tokens: list[str], commas: list[int]) -> bool:
    """A cheap necessary condition for _collapse_enumerations: after some comma, a clause of a possible
    size whose last or second-to-last token equals the one of the clause before (of two positions at
    most one may differ)."""
    limit = len(tokens)
    for comma, sizes in _clause_sizes(commas, limit):
        for size in sizes:
            if size > comma + 1 or comma + size >= limit:
                break
            if (tokens[comma].rstrip(",") == tokens[comma + size].rstrip(",")
                    or tokens[comma - 1] == tokens[comma + size - 1]):
                return True
    return False


def _collapse_enumerations(tokens: list[str], commas: list[int]) -> list[str]:
    """Comma-separated clauses of one shape are one clause: an enumeration of objects or errors whose
    length varies from line to line (Argo CD's `Service "a" is invalid, ConfigMap "a" is invalid`,
    Kubernetes aggregate errors, "probe failed: liveness probe failed, readiness probe failed"). Clauses
    of one shape have the same number of tokens, differ in at most one of them (that one becomes a
    value) and share at least two words, so "x is invalid, y is missing" stays as it is."""
    out: list[str] = []
    index = 0
    for comma, sizes in _clause_sizes(commas, len(tokens)):
        if comma < index:
            continue  # inside clauses already taken in
        out.extend(tokens[index:comma + 1])
        index = comma + 1
        for size in sizes:
            if size > len(out) or index + size > len(tokens):
                break
            clause = _same_clause(out[-size:], tokens[index:index + size])
            if clause is None:
                continue
            # one clause stands for the run; it ends with a comma while more may follow
            while clause is not None:
                out[-size:] = clause
                index += size
                more = clause[-1].endswith(",") and index + size <= len(tokens)
                clause = _same_clause(out[-size:], tokens[index:index + size]) if more else None
            break
    out.extend(tokens[index:])
    return out


def _same_clause(clause: list[str], other: list[str]) -> list[str] | None:
    """``clause`` (which ends with a comma) generalized to cover ``other``, if they have one shape."""
    differ = -1
    shared = 0
    for position, (a, b) in enumerate(zip(clause, other)):
        if position == len(clause) - 1:
            a, b = a.rstrip(","), b.rstrip(",")
        if a == b:
            shared += a.isalpha()
        elif differ >= 0:
            return None
        else:
            differ = position
    if shared < 2:
        return None
    last = other[-1]
    merged = [WILDCARD if position == differ else token for position, token in enumerate(clause[:-1])]
    tail = WILDCARD if differ == len(clause) - 1 else clause[-1].rstrip(",")
    return merged + [tail + ("," if last.endswith(",") else "")]


def template_text(tokens: list[str]) -> str:
    return " ".join(tokens).replace(_SPACE, DISPLAY_SPACE)


def template_tokens(text: str) -> list[str]:
    """The inverse of template_text, for templates restored from the state."""
    return text.replace(DISPLAY_SPACE, _SPACE).split(" ") if text else []
