"""E-mail over SMTP: STARTTLS or implicit TLS, optional auth, plain text + HTML from the same data."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from triage.deliver import DeliveryResult
from triage.deliver.content import Outgoing
from triage.digest.html import render_html
from triage.digest.plain import render_text


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

    def build(self, outgoing: Outgoing, text: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = outgoing.headline.replace("\n", " ")[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="triage.local")
        message.set_content(text if text is not None else render_text(outgoing))
        message.add_alternative(render_html(outgoing), subtype="html")
        return message

    def send(self, outgoing: Outgoing, text: str | None = None) -> DeliveryResult:
        message = self.build(outgoing, text)
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
