"""E-mail over SMTP: STARTTLS or implicit TLS, optional auth, text/plain + HTML rendered from the same message.

Both parts come from one ``Outgoing`` (``digest.plain``, ``digest.html``); this module only fits
the message under the size cap and sends it.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from collections.abc import Callable
from email.utils import formatdate, make_msgid
from pathlib import Path

from triage.deliver import DeliveryResult
from triage.deliver.content import Outgoing
from triage.digest.html import render_html
from triage.digest.plain import render_text


# One message per run stays under 200 KB whatever the input (mail gateways and clients cap or
# clip larger ones); measured on the bytes sent, after quoted-printable/base64 encoding.
MAX_BYTES = 190_000
CLIPS = (2000, 600, 200)  # characters kept of each template and sample when the whole cards do not fit


def wire_size(message: EmailMessage) -> int:
    """Bytes as SMTP carries them (CRLF line ends)."""
    return len(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int, *, tls: str, sender: str, recipients: list[str],
                 username: str | None = None, password: str | None = None, ca_file: Path | None = None,
                 timeout_s: float = 30.0):
        self.host = host
        self.port = port
        self.tls = tls
        self.sender = sender
        self.recipients = recipients
        self.username = username
        self.password = password
        self.ca_file = ca_file
        self.timeout_s = timeout_s

    def build(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = outgoing.headline.replace("\n", " ")[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="triage.local")
        message.set_content(render_text(outgoing))
        message.add_alternative(render_html(outgoing), subtype="html")
        return message

    def build_within(self, render: Callable[[int, int | None], tuple], cards: int,
                     max_bytes: int = MAX_BYTES) -> tuple[EmailMessage, object]:
        """The largest message under ``max_bytes`` (as sent, encodings included) that ``render`` makes.

        ``render(cards, clip)`` returns (outgoing, plan): first every card whole, then with
        templates and samples clipped, then the most cards that fit (the others join the roll-up).
        """
        for clip in (None, *CLIPS):
            outgoing, plan = render(cards, clip)
            message = self.build(outgoing)
            if wire_size(message) <= max_bytes:
                return message, plan
        low, high = 0, cards - 1  # the most cards that fit, clipped the most (the size grows with the cards)
        best = None
        while low <= high:
            middle = (low + high) // 2
            outgoing, plan = render(middle, CLIPS[-1])
            message = self.build(outgoing)
            if wire_size(message) <= max_bytes:
                best, low = (message, plan), middle + 1
            else:
                high = middle - 1
        if best is None:  # not even the headline and the roll-up line: send them anyway, they are bounded
            return message, plan
        return best

    def send(self, outgoing: Outgoing) -> DeliveryResult:
        return self.send_message(self.build(outgoing))

    def send_message(self, message: EmailMessage) -> DeliveryResult:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            if self.tls == "ssl":
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password or "")
                refused = client.send_message(message)
        except smtplib.SMTPAuthenticationError as err:
            return DeliveryResult(self.name, False, f"SMTP login refused ({err.smtp_code})")
        except smtplib.SMTPRecipientsRefused as err:
            return DeliveryResult(self.name, False, f"every recipient refused: {', '.join(sorted(err.recipients))}")
        except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
            return DeliveryResult(self.name, False, f"SMTP {self.host}:{self.port}: {type(err).__name__}: {err}"[:300])
        if refused:
            # The others got it: the message counts as delivered, and the digest and logs say who did not.
            return DeliveryResult(self.name, True, f"refused recipients: {', '.join(sorted(refused))}")
        return DeliveryResult(self.name, True)

