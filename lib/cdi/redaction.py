"""Keeping secrets out of messages: which config keys and environment variables hold secrets,
and a redactor for the text of errors and log records.

Errors are written to name the key, never the value; this is the second line of defence for
text we do not write ourselves (a driver's message, a traceback), where every known secret value
is replaced by ``***``.

    >>> is_secret_name("CDI_PG_DSN"), is_secret_name("api-key"), is_secret_name("table")
    (True, True, False)
    >>> Redactor({"s3cr et"}).text("login with s3cr et failed")
    'login with *** failed'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

MASK = "***"
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "dsn", "credential", "credentials", "key",
     "apikey", "auth"}
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")


def is_secret_name(name: str) -> bool:
    """A key or variable named like a secret (``password``, ``CDI_PG_DSN``, ``api_key``, ...)."""
    return any(word in _SECRET_WORDS for word in _WORD.findall(name.lower()))


class Redactor:
    """Replaces every known secret value in a text; longest first, so no fragment of one is left."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets: list[str] = []
        self.extend(secrets)

    def extend(self, secrets: Iterable[str]) -> None:
        """Also mask these (a filter already installed with this redactor masks them from now on)."""
        given = [s for s in secrets if s and s.strip()]
        # also as repr() writes it, for messages that quote a value with !r
        known = set(self.secrets) | set(given) | {repr(s)[1:-1] for s in given}
        self.secrets = sorted(known, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter that renders a record (message and traceback) with the secrets masked."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redactor.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


@contextmanager
def masked_logs(redactor: Redactor) -> Iterator[None]:
    """While inside, every record the root logger's handlers emit has ``redactor``'s secrets masked."""
    handlers = list(logging.getLogger().handlers)
    masking = RedactingFilter(redactor)
    for handler in handlers:
        handler.addFilter(masking)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(masking)
