"""The card the model writes, validated, and made safe to show (pure).

The model's answer is untrusted text: it is parsed as one JSON object, validated, and then
stripped of what could act on its own in any channel (links, mentions, HTML tags, control
characters). Everything else is kept verbatim (underscores, parentheses, values: an identifier
like ``SSL_do_handshake`` is the point of the sentence); each renderer escapes for its own target
(``triage.digest.escape``), so markdown never becomes structure and plain text shows no backslash.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class CardText(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=3, max_length=120)
    what_happened: str = Field(min_length=3, max_length=600)
    likely_cause: str = Field(min_length=3, max_length=600)
    next_step: str = Field(min_length=3, max_length=600)


def output_schema() -> dict:
    """The JSON schema given to the server to constrain generation."""
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 100},
            "what_happened": {"type": "string", "minLength": 3, "maxLength": 400},
            "likely_cause": {"type": "string", "minLength": 3, "maxLength": 400},
            "next_step": {"type": "string", "minLength": 3, "maxLength": 400},
        },
        "required": ["title", "what_happened", "likely_cause", "next_step"],
        "additionalProperties": False,
    }


class InvalidAnswer(Exception):
    """The model's answer is not the JSON object we asked for."""


def parse_answer(content: str) -> CardText:
    text = content.strip()
    if text.startswith("```"):
        text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidAnswer(f"not JSON ({err.msg})") from None
    except RecursionError:
        raise InvalidAnswer("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidAnswer("not a JSON object")
    try:
        card = CardText.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise InvalidAnswer(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    cleaned = CardText.model_construct(**{field: sanitize(getattr(card, field)) for field in CardText.model_fields})
    if any(len(getattr(cleaned, field)) < 3 for field in CardText.model_fields):
        raise InvalidAnswer("empty after removing links and markup")
    return cleaned


_URL = re.compile(r"(?i)\b(?:https?|ftp|file|javascript|data|mailto):\S*|\bwww\.\S+")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_SLACK_TOKEN = re.compile(r"<[!@#][^>]*>")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_MENTION = re.compile(r"(?<!\w)@(?=(?:channel|here|everyone)\b|[A-Za-z0-9._-]+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    """Prose with nothing that can act: no links, mentions, tags or control characters; the rest verbatim."""
    text = _CONTROL.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _SLACK_TOKEN.sub("", text)
    text = _TAG.sub("", text)
    text = _URL.sub("(link removed)", text)
    text = _MENTION.sub("", text)
    return " ".join(text.split())
