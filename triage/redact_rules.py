"""What redaction masks (pure): token formats by provider, secret key names, card numbers.

Three kinds of rule, each written for a class of real log text:
- FORMATS: credentials a provider stamps with a recognisable prefix or shape (AWS key ids,
  GitHub/GitLab/Slack/Stripe/npm/PyPI tokens, JWTs, private key blocks, ...). They match
  wherever the token stands: free text, a URL, a stack trace, a JSON field.
- key names (``secret_verdict``): the value of a key whose *name* says it is a secret, in every
  assignment form (``k=v``, ``k: v``, ``"k": "v"``, headers, query strings, env ``K=V``),
  whatever the value looks like. Prose ("token expired", "auth failed for user x") has no
  assignment and is left alone.
- card numbers: 13-19 digits, whole or spaced/dashed in card groups (4-4-4-4, 4-6-5), with an
  issuer's leading digit and a valid Luhn checksum, so order ids and epoch timestamps stay readable.
Each rule names the lower-case substrings (triggers) without which it cannot match; redact.py
uses them as a cheap pre-filter and to skip rules whose trigger is absent from a line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from triage.shape import DIGITS_TO_ZERO


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    triggers: tuple[str, ...]  # lower-case substrings, one of which any match contains
    pattern: re.Pattern[str]
    replacement: str | object  # a template string or a callable(match) -> str
    # (word, regex tail) pairs over the lower-cased text that the pre-filter looks for instead of
    # the bare triggers, when those would let through too many ordinary lines ("card
    # authorization rejected", "basic authentication required").
    prefilter: tuple[tuple[str, str], ...] | None = None
    # The triggers are words the entry must mention, not part of the match: the pattern alone (any
    # 40-character base64 run) would take too much, so it only applies where the line names it.
    context: bool = False


def _mixed(match: re.Match[str]) -> str:
    """Keep prefix-only matches that are plainly words ("sk-learn-pipeline-runner")."""
    token = match.group(0)
    has_digit = any(c.isdigit() for c in token)
    has_upper = any(c.isupper() for c in token)
    return "<api-key>" if has_digit and has_upper else token


def _aws_secret(match: re.Match[str]) -> str:
    # 40 characters of base64 with upper, lower and digits: an AWS secret access key. Git SHAs
    # (40 hex, one case) and words never have all three classes.
    token = match.group(0)
    if any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token):
        return "<aws-secret>"
    return token


# Tokens with a long provider prefix (AKIA, ghp_, glpat-, xoxb-, sk_live_, AIza, npm_, pypi-AgE,
# eyJ...) are found wherever they start, even glued to other text: what precedes them may be a
# word a parser made up ("nAKIA..." from a logfmt key after an escaped newline), and the prefix
# with its length is specific enough. Short prefixes (sk-, hf_, SG.) start where no letter
# precedes, after a percent-escape (q%3Dsk-...) or after an escaped newline or tab.
START = r"(?:(?<![A-Za-z])|(?<=%[0-9A-Fa-f]{2})|(?<=\\[ntr]))"
SCHEMES = r"(?:bearer|basic|token|digest|negotiate|ntlm|apikey|api-key|aws4-hmac-sha256|hmac-sha256|sso-key|ssws|splunk)"

FORMATS: tuple[Rule, ...] = (
    # PEM / OpenSSH / PGP private key blocks, also with JSON-escaped newlines; a block cut off by
    # the end of the entry is masked to the end.
    Rule("private-key", ("private key",), re.compile(
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S),
        "<private-key>"),
    # scheme://user:password@host (database URLs, git remotes, proxies); ://:password@ (redis).
    Rule("url-credentials", ("@",), re.compile(r"(?<=://)([^/\s:@\"']*):([^/\s@\"']+)@"), r"\1:<redacted>@"),
    # Authorization and Proxy-Authorization headers: the scheme stays, everything after it goes.
    Rule("authorization", ("authorization",), re.compile(
        r"(?i)\b((?:proxy-)?authorization)(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?:(" + SCHEMES + r")\s+)?[^\r\n\"'\\]+"),
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) + ' ' if m.group(3) else ''}<redacted>",
        prefilter=(("authorization", r"\\?[\"']?\s*[:=]"),)),
    Rule("cookie-header", ("cookie",), re.compile(r"(?im)^(\s*(?:set-)?cookie\s*:\s*)[^\r\n]+"), r"\1<redacted>",
         prefilter=(("cookie", r"\s*:"),)),
    Rule("jwt", ("eyj",), re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "<jwt>"),
    # Bearer / Basic credentials outside a header ("calling api with Bearer eyJ...", curl -u dumps).
    Rule("bearer", ("bearer", "basic"), re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9\-._~+/]{8,}={0,2})"
                    # ends the value, or closes its quotes; "Bearer AWS_SECRET_ACCESS_KEY = ..." or
                    # '...KEY="v"' is a key after the word, not a credential
                    r"(?=[\s,;)\]}]|$|[\"'](?:[\s,;)\]}]|$))(?![ \t]*(?:=>|[:=]))"),
         lambda m: m.group(0) if _plain_word(m.group(2)) else f"{m.group(1)} <redacted>",
         prefilter=(("bearer", r"\s+[a-z0-9\-._~+/]{8}"), ("basic", r"\s+[a-z0-9\-._~+/]{8}"))),
    # AWS access key ids (AKIA long-term, ASIA STS, and the other IAM id prefixes).
    Rule("aws-key-id", ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "apka"),
         re.compile(r"(?:(?:AKIA|ASIA)[A-Z0-9]{12,20}|(?:ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16})(?![A-Za-z0-9])"),
         "<aws-key-id>"),
    Rule("aws-secret-key", ("aws", "secret"), re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
         _aws_secret, context=True),
    Rule("google", ("aiza", "gocspx-", "ya29."), re.compile(r"(?:AIza[0-9A-Za-z_-]{20,}|GOCSPX-[\w-]{10,}|ya29\.[\w-]{20,})"),
         "<google-key>"),
    Rule("github", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
         re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})"), "<github-token>"),
    Rule("gitlab", ("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glimt-", "gloas-", "glsoat-", "glffct-", "glft-",
                    "glagent-", "gr1348941"),
         re.compile(r"(?:gl(?:pat|dt|rt|ptt|cbt|imt|oas|soat|ffct|ft|agent)-[\w-]{16,}|GR1348941[\w-]{16,})"),
         "<gitlab-token>"),
    Rule("slack", ("xox", "xapp-"), re.compile(r"(?:xox[abposr]-[A-Za-z0-9-]{10,}|xoxe(?:\.xox[bp])?-[\w-]{10,}|xapp-[\w-]{10,})"),
         "<slack-token>"),
    Rule("slack-webhook", ("hooks.slack",), re.compile(r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[\w/+-]+"),
         "https://hooks.slack.com/<redacted>"),
    Rule("stripe", ("sk_live", "sk_test", "rk_live", "rk_test", "whsec_"),
         re.compile(r"(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}|whsec_[0-9A-Za-z]{20,})"), "<stripe-key>"),
    # Azure storage / Service Bus connection strings and SAS query strings; Azure AD client secrets.
    Rule("azure-key", ("accountkey", "sharedaccesskey"),
         re.compile(r"(?i)\b((?:Account|SharedAccess)Key\s*=\s*)[A-Za-z0-9+/]{8,}={0,2}"), r"\1<redacted>"),
    Rule("azure-sas", ("sig=",), re.compile(r"(?i)([?&;]sig=)[^&\s\"'#;]+"), r"\1<redacted>"),
    Rule("azure-ad-secret", ("q~",), re.compile(r"(?<![\w~.-])[\w~.]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])"), "<azure-secret>"),
    Rule("npm", ("npm_",), re.compile(r"npm_[A-Za-z0-9]{30,}"), "<npm-token>"),
    Rule("pypi", ("pypi-",), re.compile(r"pypi-AgE[\w-]{30,}"), "<pypi-token>"),
    Rule("vault", ("hvs.", "hvb.", "hvr."), re.compile(r"hv[sbr]\.[\w-]{20,}"), "<vault-token>"),
    Rule("openai-anthropic", ("sk-",), re.compile(START + r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), _mixed),
    Rule("provider-tokens", ("sg.", "dop_v1_", "doo_v1_", "dor_v1_", "hf_", "glsa_", "glc_", "shpat_", "shpca_",
                             "shppa_", "shpss_", "dapi"),
         re.compile(START + r"(?:SG\.[\w-]{16,}\.[\w-]{16,}|do[opr]_v1_[a-f0-9]{64}|hf_[A-Za-z]{30,}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}"
                    r"|glc_[A-Za-z0-9+/]{32,}={0,2}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|dapi[a-f0-9]{32}(?:-\d)?)"),
         "<api-key>"),
)


# ---------------------------------------------------------------------------- key names

ALWAYS, BY_ENTROPY, NEVER = "always", "entropy", "never"

# A word (one piece of a key name split at _ - . and camelCase) that names a secret. The long
# forms may carry a prefix glued on ("dbpassword", "csrftoken", "jsessionid", "oauth").
_SECRET_WORD = re.compile(
    r"\w*(?:secrets?|passwords?|passwd|passphrase|pwd|token|credentials?|cookies?|signature|sessionid|sessid|session"
    r"|apikey|accesskey|privatekey|secretkey|accountkey|authkey|auth|authorization)|creds|sig|sid|jwt|sas|xsrf|csrf")
# <word>_key pairs that name a secret (detect-secrets' denylist has most of them).
_KEY_PREFIXES = frozenset((
    "api", "access", "private", "priv", "secret", "account", "auth", "service", "client", "db", "database", "master",
    "signing", "sign", "encryption", "enc", "hmac", "ssh", "deploy", "license", "subscription", "app", "consumer",
    "shared", "storage", "admin", "root", "session", "sas", "x", "webhook", "cookie", "jwt", "token", "aes", "kms",
))
# A last word that says the value is *about* the secret, not the secret: token_count, auth_method,
# password_file, token_url, secret_name. (An id is not one: session_id, access_key_id are secrets.)
_META_LAST = frozenset((
    "count", "counts", "total", "num", "len", "length", "size", "bytes", "type", "types", "kind", "method", "methods",
    "mode", "scheme", "schemes", "ttl", "expiry", "expires", "expired", "expiration", "exp", "age", "lifetime",
    "timeout", "duration", "name", "names", "file", "filename", "path", "dir", "url", "uri", "endpoint", "host",
    "header", "field", "enabled", "disabled", "required", "valid", "invalid", "status", "format", "version", "limit",
    "limits", "max", "min", "used", "rate", "source", "provider", "algorithm", "alg", "issuer", "scope", "scopes",
    "policy", "rotation", "rotated", "error", "errors", "err", "reason", "message", "msg", "hint", "ref", "store",
    "manager", "mount", "backend", "class", "config", "present", "missing", "prefix", "set", "strength", "level",
    "index", "idx", "position", "pos", "ms", "s", "seconds", "sec", "at",
))
_FLAG_FIRST = frozenset(("is", "has", "use", "enable", "disable", "no", "num", "max", "min", "total", "require",
                         "skip", "with", "without", "allow"))
_ENTROPY_LAST = frozenset(("key", "salt"))  # a pin or an otp is too short to look random anyway
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@lru_cache(maxsize=4096)
def secret_verdict(key: str) -> str:
    """ALWAYS when the key's name says its value is a secret, BY_ENTROPY when it is only
    secret-ish (``signing_key``, ``salt``: masked when the value looks random), else NEVER.
    Memoized: a pure function of the name, so the cache cannot change what is masked."""
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words:
        return NEVER
    hit = -1
    for i, word in enumerate(words):
        pair = i > 0 and word == "key" and words[i - 1] in _KEY_PREFIXES
        # "pass" alone is a secret only after another word (db_pass; "pass" and "bypass" are not),
        # and with "word" after it in camel case (PassWord, passWord)
        passes = (word == "pass" and i > 0) or (word == "word" and i > 0 and words[i - 1] == "pass")
        if pair or _SECRET_WORD.fullmatch(word) or passes:
            hit = i
    last = len(words) - 1
    if hit >= 0:
        if hit < last and words[last] in _META_LAST:
            return NEVER
        if hit > 0 and words[0] in _FLAG_FIRST:
            return NEVER
        return ALWAYS
    if words[last] in _ENTROPY_LAST and not (last > 0 and words[0] in _FLAG_FIRST):
        return BY_ENTROPY
    return NEVER


def looks_random(value: str) -> bool:
    """A credential rather than a word: 16+ characters, two of lower/upper/digit, and an
    entropy of at least 3 bits a character (hex digests, base64 keys, UUID-shaped tokens)."""
    value = value.strip("\"'\\.")
    if len(value) < 16 or "://" in value or value.startswith("/") or ":" in value:
        return False
    classes = (any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value))
    if classes < 2:
        return False
    counts: dict[str, int] = {}
    for c in value:
        counts[c] = counts.get(c, 0) + 1
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


def _plain_word(value: str) -> bool:
    """'token', 'authentication', 'realm': lower-case letters only, never a credential."""
    return value.isalpha() and value.islower()


# ---------------------------------------------------------------------------- card numbers

# Any card holds an issuer digit and 3 more digits (a card's first group has 4 or 6 digits, or the
# card is one run of 13-19), then 9 more digits, each at most one space or dash apart: a cheap gate
# (epoch milliseconds start with 1 and never pass it, dates and addresses stop at their first
# other character). Possessive: a separator that is there is not tried away again.
CARD_GATE = re.compile(r"[2-6]\d{3}(?:[ -]?+\d){9}")
_WITHOUT_SEPARATORS = b" -"


def may_hold_card(text: str) -> bool:
    """CARD_GATE's answer, cheaply where it must be no: the gate needs 13 digits at most one space or
    dash apart, so an ASCII text (where \\d is 0-9 only) without 13 digits in a row once spaces and
    dashes are gone cannot pass it. Most log messages hold digits (ports, IPs, timings) but no such
    run, and these byte operations cost a fifth of the regex's scan."""
    if text.isascii() and b"0000000000000" not in text.encode("ascii").translate(
            DIGITS_TO_ZERO, _WITHOUT_SEPARATORS):
        return False
    return CARD_GATE.search(text) is not None


# A run of digit groups ("4111 1111 1111 1111 12" before "/27", "123 4111-1111-..."): the card is
# looked for among its consecutive groups, so digits next to it (an expiry date, a CVV, a count)
# neither hide it nor make it a longer non-card number. The decimals of a float (0.4111...) are not one.
_DIGIT_RUN = re.compile(r"\d(?:(?<![A-Za-z0-9]\d)(?<!\d\.\d)(?<!%\d)|(?<=%[0-9A-Fa-f]{2}\d)|(?<=\\[ntr]\d))\d*(?:[ -]\d+)*")
_GROUPS = re.compile(r"([ -])")


def mask_cards(text: str) -> str:
    return _DIGIT_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if sum(c.isdigit() for c in run) < 13:
        return run
    parts = _GROUPS.split(run)  # group, separator, group, ...
    groups = parts[0::2]
    out: list[str] = []
    i = 0
    while i < len(groups):
        digits, j, hit = "", i, -1
        while j < len(groups) and len(digits) + len(groups[j]) <= 19:
            digits += groups[j]
            if len(digits) >= 13 and is_card_number(" ".join(groups[i:j + 1])):  # grouped as cards are printed
                hit = j
            j += 1
        if hit >= 0:
            out.append("<card>")
            i = hit + 1
        else:
            out.append(groups[i])
            i += 1
        if i < len(groups):
            out.append(parts[2 * i - 1])
    return "".join(out)


def is_card_number(candidate: str) -> bool:
    """Issuer's leading digit (2 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 5 Mastercard/Maestro,
    6 Discover/UnionPay/Maestro) and the Luhn checksum: a random id passes one time in ten."""
    digits = candidate.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False
    groups = re.split(r"[ -]", candidate)
    if len(groups) > 1 and not _printed_like_a_card(groups):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if position % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _printed_like_a_card(groups: list[str]) -> bool:
    """A spaced or dashed card is printed in groups that lead with 4 (or UnionPay's 6) digits:
    4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4. Numbers that merely sit side by side are not
    one card: a Django line's ``log 23 717672919674186`` (a thread number and a request id)."""
    return len(groups[0]) in (4, 6) and all(len(g) >= 4 for g in groups[1:-1]) and len(groups[-1]) >= 3
