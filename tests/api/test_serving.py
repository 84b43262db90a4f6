"""granian's application (``api.serving``): forwarded headers trusted from the same
addresses uvicorn trusts (FORWARDED_ALLOW_IPS, default 127.0.0.1), ignored from others."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.serving import trusted_proxies, with_proxy_headers


async def _echo(request: Request) -> JSONResponse:
    client = request.client.host if request.client else None
    return JSONResponse({"client": client, "scheme": request.url.scheme})


ECHO = Starlette(routes=[Route("/", _echo)])
FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def test_the_trusted_addresses_default_to_the_loopback_as_uvicorn_s() -> None:
    """No FORWARDED_ALLOW_IPS: 127.0.0.1; a list is split on commas, blanks dropped."""
    assert trusted_proxies({}) == ["127.0.0.1"]
    assert trusted_proxies({"FORWARDED_ALLOW_IPS": "10.0.0.1, 10.0.0.2,"}) == [
        "10.0.0.1",
        "10.0.0.2",
    ]


def test_forwarded_headers_count_only_from_a_trusted_proxy() -> None:
    """From a trusted proxy the client and scheme are the forwarded ones; from any other
    address the headers are ignored."""
    pytest.importorskip("granian")
    trusted = TestClient(with_proxy_headers(ECHO, ["testclient"])).get("/", headers=FORWARDED)
    other = TestClient(with_proxy_headers(ECHO, ["127.0.0.1"])).get("/", headers=FORWARDED)
    assert trusted.json() == {"client": "203.0.113.7", "scheme": "https"}
    assert other.json() == {"client": "testclient", "scheme": "http"}
