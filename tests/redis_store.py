"""The machine's Redis for tests of shared rate limits (``CVAULT_TEST_REDIS_URL``,
default 127.0.0.1:6379): unreachable, such a test fails under CI=true and is skipped
elsewhere, with the reason."""

from __future__ import annotations

import os

import pytest
import redis

from tests.conftest import IN_CI

__all__ = ["REDIS_URL", "require_redis"]

REDIS_URL = os.environ.get("CVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The URL of a reachable Redis; each test keeps to keys of its own (its keyring's
    digests, or a prefix of its own)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis unreachable at {REDIS_URL}: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL
