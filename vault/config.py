"""Settings, read once from the environment and then frozen.

Every setting is named ``CVAULT_*``. A bad value raises :class:`ConfigError`
naming the variable and the rule it broke; no value is ever echoed back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = ["ConfigError", "Environment", "Settings", "TrustedDocuments"]


class ConfigError(Exception):
    """A setting is missing or malformed."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class TrustedDocuments(StrEnum):
    """Which GraphQL documents the gateway runs: ``off`` (any text; document ids are not
    accepted), ``allow`` (any text, and registered documents by id), ``require`` (only
    registered documents, by id or by their exact text)."""

    OFF = "off"
    ALLOW = "allow"
    REQUIRE = "require"


@dataclass(frozen=True, slots=True)
class Settings:
    """The vault's configuration. Build it with :meth:`from_env`."""

    data_dir: Path
    database_url: str
    keyring_path: Path
    # CVAULT_DATABASE_DIRECT_URL: the same database without a pooler in between, for what
    # needs a session of its own (LISTEN, session advisory locks, migrations). When set,
    # ``database_url`` is taken to go through a transaction-pooling PgBouncer: its
    # connections prepare no statements on the server. None: ``database_url`` is direct.
    database_direct_url: str | None = None
    # CVAULT_DATABASE_REPLICA_URL: a streaming replica of the database, for the reads that
    # tolerate lag (segment preview and members, analytics, audit search and export).
    database_replica_url: str | None = None
    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    default_phone_region: str | None = None
    blind_index_population: int = 1_000_000
    audit_key_path: Path | None = None
    audit_origin: str = "customer-vault/audit"
    jwt_issuer: str = "customer-vault"
    jwt_audience: str = "customer-vault"
    jwks_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = 600
    max_body_bytes: int = 1_048_576
    # Threads per process that run GraphQL operations, each holding one pooled database
    # connection while it runs: at most the pool's 20 steady connections, so no overflow
    # connection is opened and closed under load. CPU-bound work shares one GIL: in-process
    # (bench/request_cost.py) 4 threads cost ~30% less CPU per request than 40, through
    # uvicorn at 16 connections no difference showed (bench/graphql/, 2026-12-03).
    graphql_threads: int = 16
    controller: str = "customer-vault"
    privacy_policy_url: str = ""
    # What every consent and erasure receipt states: the language its text is in (a BCP 47
    # tag) and the jurisdiction whose law it is given under (ISO 3166 code, or EU).
    receipt_language: str = "en"
    receipt_jurisdiction: str = "EU"
    retention_file: Path | None = None
    attributes_file: Path | None = None
    # The pages: where sign-in codes go (SMTP, else in development and test a file outbox
    # under the data directory) and whether an erasure filed on the privacy page waits for
    # the compliance desk's approval (``desk``) or is carried out at once (``automatic``).
    smtp_url: str | None = None
    mail_from: str = "customer-vault@localhost"
    erasure_approval: str = "desk"
    # Channel analytics and funnels: cells of fewer customers are suppressed, queries
    # whose population is under it refused (vault/segments/analytics.py).
    analytics_min_group: int = 10
    # CVAULT_TRUSTED_DOCUMENTS; None: ``require`` in production, ``allow`` elsewhere.
    trusted_documents_setting: TrustedDocuments | None = None
    # The user PIN of a PKCS#11 token holding the keys (a keyring made with `cvault init
    # --key-provider pkcs11`): from the environment only, never on a command line; kept
    # out of repr so that no log line or traceback that prints the settings shows it.
    pkcs11_pin: str | None = field(default=None, repr=False)
    # Many processes (docs/propagation.md): how often each process polls for a policy or
    # trusted documents changed elsewhere (the fallback of LISTEN/NOTIFY on PostgreSQL),
    # whether it listens at all (off behind a pooler that cannot LISTEN), and the Redis
    # that holds the rate limits when set (else PostgreSQL's table, or, on SQLite, memory).
    refresh_seconds: int = 2
    listen: bool = True
    redis_url: str | None = None
    # The server's scheduled jobs (vault.scheduling): seconds between runs, None when off.
    # Each runs in one process at a time (the job's leader); followers try to take over
    # every ``leader_poll`` seconds.
    audit_sequence_every: float | None = 0.5
    webhook_delivery_every: float | None = 2.0
    segment_refresh_every: float | None = 3600.0
    metrics_rollup_every: float | None = 3600.0
    retention_every: float | None = 86400.0
    leader_poll: float = 1.0
    # Access anomaly alerts (vault.alerts, docs/alerts.md): how often the detector scans
    # the audit trail, its thresholds, the hours exports are expected in (None: any hour)
    # and the zone they are read in, and the security endpoint that hears of each alert.
    anomaly_scan_every: float | None = 60.0
    alert_distinct_customers_per_hour: int = 200
    alert_baseline_factor: float = 3.0
    alert_refusals_per_hour: int = 20
    alert_export_hours: tuple[int, int] | None = None
    alert_time_zone: str = "UTC"
    security_webhook_url: str | None = None

    @property
    def jwt_signing_key(self) -> Path:
        """The local development token-signing key (``cvault token issue``)."""
        return self.keyring_path.parent / "jwt-signing.json"

    @property
    def outbox_dir(self) -> Path:
        """The development outbox: one file per sign-in message (mode 0600)."""
        return self.data_dir / "outbox"

    @property
    def uses_file_outbox(self) -> bool:
        """Sign-in messages go to the file outbox: no SMTP server and not production."""
        return self.smtp_url is None and not self.production

    @property
    def production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def trusted_documents(self) -> TrustedDocuments:
        """The trusted documents mode in force: the setting, else ``require`` in
        production and ``allow`` in development and test."""
        if self.trusted_documents_setting is not None:
            return self.trusted_documents_setting
        return TrustedDocuments.REQUIRE if self.production else TrustedDocuments.ALLOW

    @property
    def audit_signing_key(self) -> Path:
        """The Ed25519 key that signs audit checkpoints (beside the keyring by default)."""
        return self.audit_key_path or self.keyring_path.parent / "audit-signing.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("CVAULT_DATA_DIR", ".cvault")).expanduser()
        database_url = env.get("CVAULT_DATABASE_URL") or f"sqlite:///{data_dir / 'vault.db'}"
        keyring_path = Path(
            env.get("CVAULT_KEYRING", str(data_dir / "keys" / "keyring.json"))
        ).expanduser()
        raw_env = env.get("CVAULT_ENV", Environment.DEVELOPMENT.value)
        try:
            environment = Environment(raw_env)
        except ValueError:
            allowed = ", ".join(e.value for e in Environment)
            raise ConfigError(f"Config 'CVAULT_ENV' must be one of: {allowed}.") from None
        region = env.get("CVAULT_DEFAULT_PHONE_REGION") or None
        if region is not None and not (len(region) == 2 and region.isalpha()):
            raise ConfigError(
                "Config 'CVAULT_DEFAULT_PHONE_REGION' must be a two-letter ISO 3166 code."
            )
        return cls(
            data_dir=data_dir,
            database_url=normalise_database_url(database_url),
            database_direct_url=_postgresql_url(env, "CVAULT_DATABASE_DIRECT_URL", database_url),
            database_replica_url=_postgresql_url(env, "CVAULT_DATABASE_REPLICA_URL", database_url),
            keyring_path=keyring_path,
            environment=environment,
            host=env.get("CVAULT_HOST", "127.0.0.1"),
            port=_int(env, "CVAULT_PORT", 8000, minimum=1, maximum=65535),
            log_level=env.get("CVAULT_LOG_LEVEL", "info").lower(),
            default_phone_region=region.upper() if region else None,
            blind_index_population=_int(
                env, "CVAULT_BLIND_INDEX_POPULATION", 1_000_000, minimum=4, maximum=10**12
            ),
            audit_key_path=Path(env["CVAULT_AUDIT_KEY"]) if env.get("CVAULT_AUDIT_KEY") else None,
            audit_origin=_origin(env.get("CVAULT_AUDIT_ORIGIN", "customer-vault/audit")),
            jwt_issuer=env.get("CVAULT_JWT_ISSUER", "customer-vault"),
            jwt_audience=env.get("CVAULT_JWT_AUDIENCE", "customer-vault"),
            jwks_url=env.get("CVAULT_JWKS_URL") or None,
            cors_origins=tuple(
                o.strip() for o in env.get("CVAULT_CORS_ORIGINS", "").split(",") if o.strip()
            ),
            rate_limit_per_minute=_int(
                env, "CVAULT_RATE_LIMIT_PER_MINUTE", 600, minimum=1, maximum=10**7
            ),
            max_body_bytes=_int(
                env, "CVAULT_MAX_BODY_BYTES", 1_048_576, minimum=1024, maximum=64 * 1024**2
            ),
            graphql_threads=_int(env, "CVAULT_GRAPHQL_THREADS", 16, minimum=1, maximum=256),
            controller=_short(env, "CVAULT_CONTROLLER", "customer-vault"),
            privacy_policy_url=_short(env, "CVAULT_PRIVACY_POLICY_URL", ""),
            receipt_language=_language(env.get("CVAULT_RECEIPT_LANGUAGE") or "en"),
            receipt_jurisdiction=_jurisdiction(env.get("CVAULT_RECEIPT_JURISDICTION") or "EU"),
            retention_file=(
                Path(env["CVAULT_RETENTION_FILE"]).expanduser()
                if env.get("CVAULT_RETENTION_FILE")
                else None
            ),
            attributes_file=(
                Path(env["CVAULT_ATTRIBUTES_FILE"]).expanduser()
                if env.get("CVAULT_ATTRIBUTES_FILE")
                else None
            ),
            smtp_url=_smtp_url(env.get("CVAULT_SMTP_URL") or None),
            mail_from=_address(env.get("CVAULT_MAIL_FROM", "customer-vault@localhost")),
            erasure_approval=_choice(env, "CVAULT_ERASURE_APPROVAL", "desk", ("desk", "automatic")),
            analytics_min_group=_int(
                env, "CVAULT_ANALYTICS_MIN_GROUP", 10, minimum=2, maximum=1_000_000
            ),
            trusted_documents_setting=(
                TrustedDocuments(
                    _choice(env, "CVAULT_TRUSTED_DOCUMENTS", "", tuple(TrustedDocuments))
                )
                if env.get("CVAULT_TRUSTED_DOCUMENTS")
                else None
            ),
            pkcs11_pin=_pin(env.get("CVAULT_PKCS11_PIN")),
            refresh_seconds=_int(env, "CVAULT_REFRESH_SECONDS", 2, minimum=1, maximum=3600),
            listen=_choice(env, "CVAULT_LISTEN", "on", ("on", "off")) == "on",
            redis_url=_redis_url(env.get("CVAULT_REDIS_URL") or None),
            audit_sequence_every=_every(env, "CVAULT_AUDIT_SEQUENCE_EVERY", 0.5),
            webhook_delivery_every=_every(env, "CVAULT_WEBHOOK_DELIVERY_EVERY", 2.0),
            segment_refresh_every=_every(env, "CVAULT_SEGMENT_REFRESH_EVERY", 3600.0),
            metrics_rollup_every=_every(env, "CVAULT_METRICS_ROLLUP_EVERY", 3600.0),
            retention_every=_every(env, "CVAULT_RETENTION_EVERY", 86400.0),
            leader_poll=_duration(env, "CVAULT_LEADER_POLL", 1.0, minimum=0.1, maximum=30.0),
            anomaly_scan_every=_every(env, "CVAULT_ANOMALY_SCAN_EVERY", 60.0),
            alert_distinct_customers_per_hour=_int(
                env, "CVAULT_ALERT_DISTINCT_CUSTOMERS_PER_HOUR", 200, minimum=1, maximum=10**9
            ),
            alert_baseline_factor=_factor(env, "CVAULT_ALERT_BASELINE_FACTOR", 3.0),
            alert_refusals_per_hour=_int(
                env, "CVAULT_ALERT_REFUSALS_PER_HOUR", 20, minimum=1, maximum=10**9
            ),
            alert_export_hours=_hours(env.get("CVAULT_ALERT_EXPORT_HOURS", "off")),
            alert_time_zone=_zone(env.get("CVAULT_ALERT_TIME_ZONE") or "UTC"),
            security_webhook_url=_http_url(
                "CVAULT_SECURITY_WEBHOOK_URL", env.get("CVAULT_SECURITY_WEBHOOK_URL") or None
            ),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def normalise_database_url(url: str) -> str:
    """Map plain ``postgresql://`` URLs onto the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _postgresql_url(env: Mapping[str, str], name: str, database_url: str) -> str | None:
    """A second URL of a PostgreSQL database (direct or replica); only beside a
    PostgreSQL ``CVAULT_DATABASE_URL``."""
    value = env.get(name) or None
    if value is None:
        return None
    url = normalise_database_url(value)
    if not url.startswith("postgresql") or not normalise_database_url(database_url).startswith(
        "postgresql"
    ):
        raise ConfigError(
            f"Config '{name}' needs PostgreSQL: a postgresql:// URL beside a PostgreSQL "
            "CVAULT_DATABASE_URL."
        )
    return url


def _short(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if len(value) > 300 or any(ord(ch) < 32 for ch in value):
        raise ConfigError(f"Config '{name}' must be at most 300 printable characters.")
    return value


_LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_JURISDICTION_RE = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


def _language(value: str) -> str:
    """A BCP 47 language tag (``en``, ``fa``, ``th``, ``zh-Hans``, ``pt-BR``)."""
    value = value.strip()
    if len(value) > 35 or not _LANGUAGE_RE.fullmatch(value):
        raise ConfigError(
            "Config 'CVAULT_RECEIPT_LANGUAGE' must be a BCP 47 language tag, e.g. en, fa, zh-Hans."
        )
    return value


def _jurisdiction(value: str) -> str:
    """An ISO 3166 country or subdivision code (``DE``, ``US-CA``), or ``EU``."""
    value = value.strip()
    if not _JURISDICTION_RE.fullmatch(value):
        raise ConfigError(
            "Config 'CVAULT_RECEIPT_JURISDICTION' must be an ISO 3166 code in capitals "
            "(DE, US-CA) or EU."
        )
    return value


def _smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("smtp://", "smtps://", "smtp+starttls://")) or any(
        ch.isspace() for ch in value
    ):
        raise ConfigError(
            "Config 'CVAULT_SMTP_URL' must be smtp://, smtps:// or smtp+starttls://HOST[:PORT]."
        )
    return value


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("redis://", "rediss://", "redis+unix://")) or any(
        ch.isspace() for ch in value
    ):
        raise ConfigError(
            "Config 'CVAULT_REDIS_URL' must be redis://HOST[:PORT][/DB], rediss://... or "
            "redis+unix:///PATH."
        )
    return value


def _http_url(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    bad = any(ch.isspace() or ord(ch) < 32 for ch in value) or len(value) > 2000
    if bad or not value.startswith(("http://", "https://")):
        raise ConfigError(f"Config '{name}' must be an http:// or https:// URL.")
    return value


_HOURS = re.compile(r"^([01]?[0-9]|2[0-4])-([01]?[0-9]|2[0-4])$")


def _hours(value: str) -> tuple[int, int] | None:
    """``08-18``: from 08:00 up to 18:00 (``22-06`` wraps past midnight); ``off``: any hour."""
    raw = value.strip().lower()
    if raw in ("", "off"):
        return None
    found = _HOURS.match(raw)
    if found is None or int(found.group(1)) % 24 == int(found.group(2)) % 24:
        raise ConfigError(
            "Config 'CVAULT_ALERT_EXPORT_HOURS' must be two different hours such as 08-18 "
            "(0-24), or off."
        )
    return int(found.group(1)) % 24, int(found.group(2)) % 24 or 24


def _zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - rarely needed

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "Config 'CVAULT_ALERT_TIME_ZONE' must be an IANA time zone such as UTC or "
            "Europe/Berlin."
        ) from None
    return value


def _factor(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"Config '{name}' must be a number.") from None
    if not 1.0 <= value <= 1000.0:
        raise ConfigError(f"Config '{name}' must be between 1 and 1000.")
    return value


def _address(value: str) -> str:
    text = value.strip()
    local, at, domain = text.partition("@")
    if not (local and at and domain) or len(text) > 254 or any(ch.isspace() for ch in text):
        raise ConfigError("Config 'CVAULT_MAIL_FROM' must be an e-mail address.")
    return text


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(f"Config '{name}' must be one of: {', '.join(allowed)}.")
    return value


def _pin(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 256 or any(ord(ch) < 32 for ch in value):
        raise ConfigError("Config 'CVAULT_PKCS11_PIN' must be at most 256 printable characters.")
    return value


def _origin(value: str) -> str:
    if not value or any(ch.isspace() for ch in value) or len(value) > 200:
        raise ConfigError("Config 'CVAULT_AUDIT_ORIGIN' must be a non-empty name without spaces.")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"Config '{name}' must be a whole number.") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"Config '{name}' must be between {minimum} and {maximum}.")
    return value


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")


def _every(env: Mapping[str, str], name: str, default: float) -> float | None:
    """A job's period: a duration, or ``off`` (None)."""
    if env.get(name, "").strip().lower() == "off":
        return None
    return _duration(env, name, default, minimum=0.05, maximum=30 * 86400.0)


def _duration(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float
) -> float:
    """Seconds from ``500ms``, ``2s``, ``15m``, ``1h``, ``1d`` or a bare number of seconds."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    found = _DURATION.match(raw)
    if found is None:
        raise ConfigError(
            f"Config '{name}' must be a duration such as 500ms, 2s, 15m, 1h or 1d"
            + (", or off." if name.endswith("_EVERY") else ".")
        )
    seconds = float(found.group(1)) * _UNITS[found.group(2) or "s"]
    if not minimum <= seconds <= maximum:
        raise ConfigError(f"Config '{name}' must be between {minimum:g} s and {maximum:g} s.")
    return seconds
