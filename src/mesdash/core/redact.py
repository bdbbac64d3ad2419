"""Secret redaction for URLs, driver messages and log records."""

from __future__ import annotations

import logging
import re

# scheme://user:password@host  → scheme://user:***@host (also redis://:password@host)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
# password=secret, PASSWORD: secret, pwd='secret'
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*)"
    r"(?P<q>['\"]?)(?P<value>[^'\"\s,;&)]+)(?P=q)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

MASK = "***"


def redact(text: str) -> str:
    """Mask passwords in URLs, key=value secrets and bearer tokens."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", text)
    return _BEARER.sub(lambda m: f"{m['key']}{MASK}", text)


def strip_password(url: str) -> str:
    """The URL without its password (for namespaces and display)."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}@", url)


class RedactingFilter(logging.Filter):
    """Rewrites every record's message (and exception text) before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the filter to the root logger's handlers and to the logger itself."""
    target = logger or logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
