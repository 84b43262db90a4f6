"""The application as granian runs it (``cvault serve --server granian``).

uvicorn trusts ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from the addresses in
``FORWARDED_ALLOW_IPS`` (default 127.0.0.1: a reverse proxy on the same host): the
client address (its pseudonym in audit entries and the failed-token rate limit) and the
scheme (Secure cookies, the OpenID Connect callback URL) are then the proxy's client's.
granian does not by itself: :func:`create_app_for_granian` wraps the application in
granian's own proxy-headers wrapper with the same trusted addresses, so a vault behind
a proxy sees the same clients under either server.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.types import Receive, Scope, Send

from api.app import create_app_from_env

__all__ = ["create_app_for_granian", "trusted_proxies", "with_proxy_headers"]


def trusted_proxies(environ: dict[str, str] | None = None) -> list[str]:
    """The addresses whose forwarded headers are trusted, as uvicorn reads them."""
    raw = (environ if environ is not None else os.environ).get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    return [each.strip() for each in raw.split(",") if each.strip()]


def with_proxy_headers(app: Any, trusted: list[str]) -> Any:  # noqa: ANN401 - untyped
    """``app`` with forwarded headers from ``trusted`` addresses applied (granian's)."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers  # noqa: PLC0415

    wrapped = wrap_asgi_with_proxy_headers(app, trusted)  # a function returning a coroutine

    async def forwarded(scope: Scope, receive: Receive, send: Send) -> None:
        await wrapped(scope, receive, send)

    return forwarded


def create_app_for_granian() -> Any:  # noqa: ANN401 - granian's wrapper is untyped
    """Factory for granian: :func:`api.app.create_app_from_env`, forwarded headers
    trusted from :func:`trusted_proxies`."""
    return with_proxy_headers(create_app_from_env(), trusted_proxies())
