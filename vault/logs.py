"""Structured JSON logs with a request id, and a processor that drops PII.

``drop_pii`` is a pure structlog processor: keys that name PII fields lose
their values, and e-mail addresses or international phone numbers that slip
into any string are masked. Exceptions are rendered without local variables.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO, cast

import orjson
import structlog

__all__ = ["PII_KEYS", "configure_logging", "drop_pii", "get_logger"]

PII_KEYS = frozenset(
    {
        "email", "phone", "first_name", "last_name", "firstname", "lastname", "name",
        "full_name", "birth_date", "birthdate", "address", "payload", "value", "values",
        "password", "token", "authorization", "ssn", "ip", "client_ip", "user_agent",
    }
)  # fmt: skip
REDACTED = "[redacted]"
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+\.[^\s@\"'<>(),;:]+")
_PHONE = re.compile(r"\+\d[\d\s().-]{5,}\d")


@functools.lru_cache(maxsize=4096)
def _normalised_key(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower().replace("-", "_")


# Values that cannot hold text: passed through untouched (the common case of a log line).
_PLAIN = (int, float, bool, type(None))


def _mask(value: str) -> str:
    """E-mails and phone numbers masked. Each pattern needs a character the test before
    it looks for ("@", "+"): a string without it is returned as is, with no regex run."""
    if "@" in value:
        value = _EMAIL.sub("[email]", value)
    if "+" in value:
        value = _PHONE.sub("[phone]", value)
    return value


def _scrub(value: Any, depth: int = 0) -> Any:  # noqa: ANN401 - log values are arbitrary
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _normalised_key(str(k)) in PII_KEYS else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    return value


def drop_pii(
    _logger: Any,  # noqa: ANN401 - structlog's processor signature
    _method: str,
    event_dict: MutableMapping[str, Any],
) -> MutableMapping[str, Any]:
    """Replace values under PII keys, and mask e-mails and phone numbers in strings."""
    for key, value in list(event_dict.items()):
        if _normalised_key(key) in PII_KEYS:
            event_dict[key] = REDACTED
        elif type(value) is str:
            event_dict[key] = _mask(value)
        elif type(value) not in _PLAIN:
            event_dict[key] = _scrub(value)
    return event_dict


# Tracebacks as data, without the frames' local variables: a local may hold a decrypted
# value, and no pattern match could tell a name or an address from any other string.
_EXCEPTIONS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False, use_rich=False)
)


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _EXCEPTIONS,
        drop_pii,
    ]


def _dumps(value: Any, **options: Any) -> str:  # noqa: ANN401 - structlog's serializer
    """JSON with orjson (non-ASCII kept as is), the json module for what orjson refuses
    (integers beyond 64 bits); structlog's fallback for other types."""
    default = options.get("default")
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=default, ensure_ascii=False)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", *, stream: Any = None) -> None:  # noqa: ANN401
    """JSON lines on stderr (or ``stream``); safe to call more than once."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared_processors(), structlog.processors.JSONRenderer(_dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(
            file=stream or cast("TextIO", _CurrentStderr())
        ),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:  # noqa: ANN401 - structlog's BoundLogger is dynamically typed
    return structlog.get_logger(name)


# Whatever logs first gets the PII-dropping pipeline, even before an edge configures it.
if not structlog.is_configured():
    configure_logging()
