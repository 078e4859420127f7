"""Settings from the environment (12-factor). The only module that reads os.environ."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
load_dotenv(ROOT / ".env")


def _env(name: str, default: str | None = None) -> str | None:
    """Read one variable; an empty string counts as unset."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _bool(name: str, default: bool) -> bool:
    """Read a yes/no variable."""
    value = _env(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def database_url(raw: str | None) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver SQLAlchemy needs."""
    url = raw or "postgresql+psycopg://postgres@127.0.0.1:5432/herald"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(instance: Path, env: str) -> str:
    """SECRET_KEY from the environment; development keeps a generated one under instance/."""
    key = _env("SECRET_KEY")
    if key:
        return key
    if env == "production":
        raise RuntimeError("SECRET_KEY must be set in production (HERALD_ENV=production).")
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Config:
    """Every setting Herald has, with its default. The README's table mirrors this class."""

    def __init__(self, **overrides: object) -> None:
        env = str(overrides.get("HERALD_ENV") or _env("HERALD_ENV", "production"))
        dev = env in ("development", "test")
        instance = Path(_env("HERALD_INSTANCE_DIR", str(ROOT / "instance")))
        self.HERALD_ENV = env
        self.DEBUG = env == "development"
        self.TESTING = env == "test"
        self.INSTANCE_DIR = str(instance)
        self.SECRET_KEY = _secret_key(instance, env)
        self.SQLALCHEMY_DATABASE_URI = database_url(_env("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
        self.REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.LOG_LEVEL = _env("LOG_LEVEL", "INFO")
        # Fernet keys (comma-separated, newest first) for secrets at rest; development derives one
        self.ENCRYPTION_KEYS = _env("ENCRYPTION_KEYS", "")
        self.INVITE_RATE_PER_MINUTE = _int("INVITE_RATE_PER_MINUTE", 60)  # per IP, public pages
        self.UPLOAD_DIR = _env("UPLOAD_DIR", str(instance / "uploads"))
        self.TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)  # reverse proxies in front
        self.MAX_CONTENT_LENGTH = 52 * 1024 * 1024  # CSV imports up to 50 MB
        # CSV imports of candidates: size limits, and how long an unfinished upload is kept
        self.IMPORT_MAX_BYTES = _int("IMPORT_MAX_BYTES", 50 * 1024 * 1024)
        self.IMPORT_MAX_LINE_BYTES = _int("IMPORT_MAX_LINE_BYTES", 100 * 1024)
        self.IMPORT_MAX_CELL_CHARS = _int("IMPORT_MAX_CELL_CHARS", 10_000)
        self.IMPORT_MAX_RECORD_LINES = _int("IMPORT_MAX_RECORD_LINES", 20)  # a quoted cell's
        self.IMPORT_UPLOAD_KEEP_SECONDS = _int("IMPORT_UPLOAD_KEEP_SECONDS", 24 * 3600)
        self.IMPORT_HOUSEKEEPING_SECONDS = _int("IMPORT_HOUSEKEEPING_SECONDS", 3600)
        # Cookies and CSRF
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", not dev)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.WTF_CSRF_TIME_LIMIT = None
        # Sessions live in PostgreSQL: idle ones end; last-seen is written at most once a minute
        self.SESSION_IDLE_SECONDS = _int("SESSION_IDLE_SECONDS", 14 * 24 * 3600)
        self.SESSION_TOUCH_SECONDS = _int("SESSION_TOUCH_SECONDS", 60)
        # Failed password attempts per window: tight per (account, IP), loose per account (then
        # only IPs that have not failed for it may try), per IP across accounts
        self.LOGIN_LIMIT_PER_ACCOUNT_IP = _int("LOGIN_LIMIT_PER_ACCOUNT_IP", 5)
        self.LOGIN_LIMIT_ACCOUNT_IP_WINDOW_SECONDS = _int(
            "LOGIN_LIMIT_ACCOUNT_IP_WINDOW_SECONDS", 900
        )
        self.LOGIN_LIMIT_PER_ACCOUNT = _int("LOGIN_LIMIT_PER_ACCOUNT", 50)
        # while that loose limit is tripped, an IP with fewer failures here may still try
        self.LOGIN_LIMIT_TRIPPED_PER_IP = _int("LOGIN_LIMIT_TRIPPED_PER_IP", 3)
        self.LOGIN_LIMIT_ACCOUNT_WINDOW_SECONDS = _int("LOGIN_LIMIT_ACCOUNT_WINDOW_SECONDS", 3600)
        self.LOGIN_LIMIT_PER_IP = _int("LOGIN_LIMIT_PER_IP", 30)
        self.LOGIN_LIMIT_IP_WINDOW_SECONDS = _int("LOGIN_LIMIT_IP_WINDOW_SECONDS", 900)
        # "Forgot password" requests per IP per window
        self.PASSWORD_RESET_LIMIT_PER_IP = _int("PASSWORD_RESET_LIMIT_PER_IP", 10)
        self.PASSWORD_RESET_LIMIT_WINDOW_SECONDS = _int("PASSWORD_RESET_LIMIT_WINDOW_SECONDS", 900)
        self.TEAM_INVITE_MAX_AGE_SECONDS = _int("TEAM_INVITE_MAX_AGE_SECONDS", 7 * 24 * 3600)
        self.PASSWORD_RESET_MAX_AGE_SECONDS = _int("PASSWORD_RESET_MAX_AGE_SECONDS", 3600)
        # Outgoing mail (the SMTP provider)
        self.MAIL_FROM = _env("MAIL_FROM", "Herald <no-reply@herald.localhost>")
        self.SMTP_HOST = _env("SMTP_HOST", "127.0.0.1")
        self.SMTP_PORT = _int("SMTP_PORT", 1025)
        self.SMTP_SECURITY = _env("SMTP_SECURITY", "none")  # none | starttls | tls
        self.SMTP_USERNAME = _env("SMTP_USERNAME")
        self.SMTP_PASSWORD = _env("SMTP_PASSWORD")
        self.SMTP_TIMEOUT_SECONDS = _float("SMTP_TIMEOUT_SECONDS", 15.0)
        # Providers: breaker, SSRF guard, VERP return path, Mailgun endpoint for tests
        self.BREAKER_THRESHOLD = _int("BREAKER_THRESHOLD", 5)
        self.BREAKER_WINDOW_SECONDS = _float("BREAKER_WINDOW_SECONDS", 60.0)
        self.BREAKER_COOLDOWN_SECONDS = _float("BREAKER_COOLDOWN_SECONDS", 30.0)
        self.ALLOW_PRIVATE_PROVIDER_HOSTS = _bool("ALLOW_PRIVATE_PROVIDER_HOSTS", dev)
        self.BOUNCE_DOMAIN = _env("BOUNCE_DOMAIN")  # VERP domain; else the org's sending domain
        self.MAILGUN_BASE_URL = _env("MAILGUN_BASE_URL")  # tests only: a local contract server
        self.MAILGUN_TIMEOUT = (
            _float("MAILGUN_CONNECT_TIMEOUT", 5.0),
            _float("MAILGUN_READ_TIMEOUT", 30.0),
        )
        self.METRICS_TOKEN = _env("METRICS_TOKEN")  # else /metrics answers loopback only
        # Tracking, provider events, sending health
        self.HEALTH_MIN_SAMPLE = _int("HEALTH_MIN_SAMPLE", 100)
        self.HEALTH_MAX_BOUNCE_RATE = _float("HEALTH_MAX_BOUNCE_RATE", 0.05)
        self.HEALTH_MAX_COMPLAINT_RATE = _float("HEALTH_MAX_COMPLAINT_RATE", 0.001)
        self.WEBHOOK_MAX_AGE_SECONDS = _int("WEBHOOK_MAX_AGE_SECONDS", 300)
        self.WEBHOOK_MAX_BYTES = _int("WEBHOOK_MAX_BYTES", 1024 * 1024)
        self.SCANNER_CLICK_SECONDS = _float("SCANNER_CLICK_SECONDS", 10.0)  # earlier = scanner
        # Opens and clicks are spooled to a file per process, then stored in batches
        self.RETENTION_INTERVAL_SECONDS = _int("RETENTION_INTERVAL_SECONDS", 3600)  # event purge
        self.TRACKING_SPOOL_DIR = _env("TRACKING_SPOOL_DIR", str(instance / "spool"))
        # a pixel/click answer waits until its hit is stored (tests read the database at once)
        self.TRACKING_WAIT_FOR_STORE = _bool("TRACKING_WAIT_FOR_STORE", env == "test")
        self.ROLLUP_INTERVAL_SECONDS = _int("ROLLUP_INTERVAL_SECONDS", 15)
        self.INBOUND_HOST = _env("INBOUND_HOST", "127.0.0.1")
        self.INBOUND_PORT = _int("INBOUND_PORT", 2525)
        self.INBOUND_MAX_BYTES = _int("INBOUND_MAX_BYTES", 512 * 1024)
        # The outbox: leases, batches, retries, sweeper
        self.SEND_LEASE_SECONDS = _float("SEND_LEASE_SECONDS", 120.0)
        self.SEND_BATCH_SIZE = _int("SEND_BATCH_SIZE", 200)  # claimed at once by a worker's senders
        # senders per worker, each with its own connection and session: a relay's round trip
        # is hidden by sending on several connections at once
        self.SEND_CONCURRENCY = _int("SEND_CONCURRENCY", 16)
        # a database connection per sender, and a few for the rest of the process
        self.SQLALCHEMY_ENGINE_OPTIONS["pool_size"] = max(5, self.SEND_CONCURRENCY + 2)
        self.TEMPLATE_RENDER_SECONDS = _float("TEMPLATE_RENDER_SECONDS", 2.0)  # one whole message
        self.TEMPLATE_RENDER_MEMORY_MB = _int("TEMPLATE_RENDER_MEMORY_MB", 24)  # built by one
        self.SEND_DISPATCHERS = _int("SEND_DISPATCHERS", 2)  # dispatchers a launch starts
        # a dispatcher stops claiming after this long and queues its successor at the back of the
        # send queue, so a worker is free for periodic jobs every few seconds whatever the backlog
        self.DISPATCH_MAX_SECONDS = _float("DISPATCH_MAX_SECONDS", 5.0)
        self.SEND_BURST = _int("SEND_BURST", 10)  # token-bucket capacity (org and provider)
        self.PROVIDER_RATE_PER_MINUTE = _int("PROVIDER_RATE_PER_MINUTE", 6000)
        # Transactional mail: an org's own bucket beside its bulk rate, and the share of each
        # provider's rate that bulk mail may not use
        self.TRANSACTIONAL_RATE_PER_MINUTE = _int("TRANSACTIONAL_RATE_PER_MINUTE", 600)
        self.TRANSACTIONAL_BURST = _int("TRANSACTIONAL_BURST", 50)
        self.PROVIDER_TRANSACTIONAL_SHARE = _float("PROVIDER_TRANSACTIONAL_SHARE", 0.1)
        self.CANDIDATE_WINDOW_SECONDS = _int("CANDIDATE_WINDOW_SECONDS", 24 * 3600)
        self.RETRY_BASE_SECONDS = _float("RETRY_BASE_SECONDS", 30.0)
        self.SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 30)
        self.CAMPAIGN_CHECK_SECONDS = _int("CAMPAIGN_CHECK_SECONDS", 30)
        self.SCHEDULER_INTERVAL_SECONDS = _float("SCHEDULER_INTERVAL_SECONDS", 5.0)
        # Development mail sink and mailbox page
        self.DEVMAIL_ENABLED = _bool("DEVMAIL_ENABLED", dev)
        self.DEVMAIL_DIR = _env("DEVMAIL_DIR", str(instance / "devmail"))
        self.DEVMAIL_HOST = _env("DEVMAIL_HOST", "127.0.0.1")
        self.DEVMAIL_PORT = _int("DEVMAIL_PORT", 1025)
        for key, value in overrides.items():
            setattr(self, key, value)
        if self.HERALD_ENV == "production" and self.DEVMAIL_ENABLED:
            raise RuntimeError(
                "DEVMAIL_ENABLED must stay off in production: the dev mailbox "
                "shows every organization's mail to any logged-in user."
            )
        if self.HERALD_ENV == "production" and self.MAILGUN_BASE_URL:
            raise RuntimeError("MAILGUN_BASE_URL is for tests; choose a region per provider.")
        if self.HERALD_ENV == "production" and not self.ENCRYPTION_KEYS:
            raise RuntimeError(
                "ENCRYPTION_KEYS must be set in production: comma-separated Fernet keys, "
                "newest first (Fernet.generate_key() from the cryptography package)."
            )
