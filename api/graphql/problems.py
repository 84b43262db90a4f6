"""A request the gateway refuses before execution: its HTTP status, error code and
message, answered as a GraphQL response with one error; and the one way a graphql-core
message is made safe to show (no value that was sent, no suggestion)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import JSONResponse, Response

__all__ = ["Problem", "error_response", "safe_message"]

_VARIABLE_VALUE = re.compile(r"^Variable '\$(\w+)' (?:got|has) invalid value.*", re.DOTALL)
_SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)
# Messages that end by quoting the value sent ("... cannot represent ...: value").
_ECHOED_VALUE = re.compile(
    r"^(.*?(?:cannot represent[^:]*|Expected value of type [^,]+))[:,].*$", re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Problem(Exception):
    """Raised by a gate; the endpoint answers it with :func:`error_response`."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] | None = None


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=dict(headers or {}),
    )


def safe_message(message: str) -> str:
    """A validation or coercion message without the value that was sent (it may be PII)
    and without "Did you mean" suggestions."""
    match = _VARIABLE_VALUE.match(message)
    if match:
        return f"Variable '${match.group(1)}' has an invalid value."
    message = _SUGGESTION.sub("", message)
    return _ECHOED_VALUE.sub(r"\1.", message)
