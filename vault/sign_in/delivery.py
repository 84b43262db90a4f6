"""Sending sign-in codes: a small sender interface, SMTP and a development file outbox, and
a queue that sends in a worker thread.

* :class:`SmtpSender` (``CVAULT_SMTP_URL``: ``smtp://``, ``smtps://`` or
  ``smtp+starttls://[user:password@]host[:port]``; stdlib :mod:`smtplib`) delivers
  e-mail only.
* :class:`FileOutbox` writes one message per file (``<time>-<id>.eml``, mode 0600) into
  ``$CVAULT_DATA_DIR/outbox`` (mode 0700), for e-mail and text messages alike; it is what
  development and test use when no SMTP server is configured. ``cvault serve`` prints
  its path.
* :class:`DeliveryQueue` hands each message to a worker thread, so a request that
  produced a message answers as fast as one that did not (no enumeration by timing),
  and an SMTP server that is slow holds no request. A failure is logged by class only.

The message text (translated) is composed by the edge; nothing here reads it.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

from vault.config import Settings
from vault.logs import get_logger

__all__ = [
    "DeliveryQueue",
    "FileOutbox",
    "OutgoingMessage",
    "Sender",
    "SmtpSender",
    "sender_for",
]

log = get_logger("vault.sign_in.delivery")
_TIMEOUT: Final = 15.0
_PORTS: Final = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one contact. ``channel`` is ``email`` or ``phone`` (a text message)."""

    channel: str
    to: str = field(repr=False)
    subject: str = field(repr=False)
    body: str = field(repr=False)
    language: str = "en"

    def as_email(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
        message["X-CVault-Channel"] = self.channel
        message.set_content(self.body)
        # After set_content, which drops every Content-* header it finds.
        message["Content-Language"] = self.language.replace("_", "-")
        return message


class Sender(Protocol):
    """Delivers messages on the channels it names."""

    @property
    def channels(self) -> frozenset[str]: ...

    def send(self, message: OutgoingMessage) -> None: ...


class SmtpSender:
    """E-mail through an SMTP server (implicit TLS, STARTTLS or plain on loopback)."""

    channels: frozenset[str] = frozenset({"email"})

    def __init__(self, url: str, mail_from: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in _PORTS or not parts.hostname:
            raise ValueError("CVAULT_SMTP_URL must be smtp://, smtps:// or smtp+starttls://HOST")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or _PORTS[parts.scheme]
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._from = mail_from

    def __repr__(self) -> str:
        return f"SmtpSender(scheme={self._scheme!r}, host={self._host!r}, port={self._port})"

    def send(self, message: OutgoingMessage) -> None:
        if message.channel not in self.channels:
            raise ValueError(f"SMTP does not deliver {message.channel} messages")
        email = message.as_email(self._from)
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self._scheme == "smtps":
            client = smtplib.SMTP_SSL(self._host, self._port, timeout=_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(self._host, self._port, timeout=_TIMEOUT)
        with client:
            if self._scheme == "smtp+starttls":
                client.starttls(context=context)
            if self._user is not None:
                client.login(self._user, self._password or "")
            client.send_message(email)


class FileOutbox:
    """Development delivery: every message a file only the vault's user can read."""

    channels: frozenset[str] = frozenset({"email", "phone"})

    def __init__(self, directory: Path, mail_from: str = "customer-vault@localhost") -> None:
        self.directory = directory
        self._from = mail_from

    def __repr__(self) -> str:
        return f"FileOutbox({str(self.directory)!r})"

    def send(self, message: OutgoingMessage) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        data = message.as_email(self._from).as_bytes()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)


def sender_for(settings: Settings) -> Sender | None:
    """SMTP when configured; else the file outbox outside production; else none (and the
    privacy page says sign-in is unavailable rather than write codes to disk)."""
    if settings.smtp_url is not None:
        return SmtpSender(settings.smtp_url, settings.mail_from)
    if settings.uses_file_outbox:
        return FileOutbox(settings.outbox_dir, settings.mail_from)
    return None


class DeliveryQueue:
    """Sends messages in worker threads; ``submit`` returns at once."""

    def __init__(self, sender: Sender, *, workers: int = 2) -> None:
        self.sender = sender
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvault-mail")

    def __repr__(self) -> str:
        return f"DeliveryQueue({self.sender!r})"

    def submit(self, message: OutgoingMessage) -> Future[None]:
        return self._pool.submit(self._send, message)

    def _send(self, message: OutgoingMessage) -> None:
        try:
            self.sender.send(message)
        except Exception as exc:
            # The class only: an SMTP reply can quote the address.
            error = type(exc).__name__
            log.error("sign-in message not delivered", channel=message.channel, error=error)  # noqa: TRY400
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True)
