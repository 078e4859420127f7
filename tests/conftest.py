"""Test fixtures: a fresh PostgreSQL database per run, an own Redis DB number, a real SMTP sink.

The suite talks to the servers named by DATABASE_URL / REDIS_URL (the embedded ones under
`make test` when those are unset). Workers, the browser and subprocesses must see committed data,
so tests commit and each test ends by truncating the tables and flushing its own Redis DB.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from flask.testing import FlaskClient
from redis.connection import parse_url
from sqlalchemy.engine import make_url

from app.config import database_url

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_url_with_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query)) | {"db": str(number)}
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{number}"))


def _libpq(url: str) -> str:
    """A psycopg conninfo from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# ---- one database and one Redis DB for the whole run, set before any app is built -------------

_BASE_DB = database_url(os.environ.get("DATABASE_URL"))
_TEST_DB = f"herald_test_{uuid.uuid4().hex[:10]}"
_TEST_DB_URL = make_url(_BASE_DB).set(database=_TEST_DB).render_as_string(hide_password=False)
GIVEN_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
# The suite flushes this DB after every test: HERALD_TEST_REDIS_DB names one kept for it on a
# shared server; else the one REDIS_URL names (its own embedded server under `make test`).
_REDIS_DB = int(os.environ.get("HERALD_TEST_REDIS_DB") or parse_url(GIVEN_REDIS_URL).get("db", 0))
_REDIS_URL = _redis_url_with_db(GIVEN_REDIS_URL, _REDIS_DB)
_TMP = tempfile.mkdtemp(prefix="herald-test-")
atexit.register(shutil.rmtree, _TMP, True)
_DEVMAIL_DIR = os.path.join(_TMP, "devmail")
_SINK_PORT = _free_port()

os.environ.update(
    HERALD_ENV="test",
    DATABASE_URL=_TEST_DB_URL,
    REDIS_URL=_REDIS_URL,
    SECRET_KEY="test-secret-key-not-for-production",
    DEVMAIL_DIR=_DEVMAIL_DIR,
    SMTP_HOST="127.0.0.1",
    SMTP_PORT=str(_SINK_PORT),
    SMTP_TIMEOUT_SECONDS="10",
    HERALD_INSTANCE_DIR=os.path.join(_TMP, "instance"),
    PUBLIC_BASE_URL="http://127.0.0.1:5000",
)

TABLES = [
    "events",
    "messages",
    "audit_entries",
    "team_invites",
    "memberships",
    "users",
    "organizations",
]


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (so its own `g` and DB session), as in production,
    even while the test body holds one."""

    def open(self, *args, **kwargs):  # noqa: ANN201
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def _database() -> Iterator[str]:
    """Create the run's database, migrate it from empty with Alembic, drop it at the end."""
    admin = _libpq(_BASE_DB)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_TEST_DB}"')
    yield _TEST_DB_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_TEST_DB}" WITH (FORCE)')


@pytest.fixture(scope="session")
def app(_database: str):
    """The app under test, schema built by `flask db upgrade` (Alembic) from an empty database."""
    from flask_migrate import upgrade

    from app import create_app

    application = create_app()
    application.test_client_class = FreshContextClient
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty tables and an empty Redis DB (FLUSHDB of the suite's own DB
    number, never FLUSHALL), and the real clock."""
    yield
    from app import clock

    clock.set_clock(None)
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    from app.extensions import db, redis

    with application.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(db.metadata.tables)} CASCADE")
        redis.client.flushdb()


@pytest.fixture
def ctx(app):
    """An app context for the test body (services, jobs, queries)."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


class Sink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

    `hold_rcpt()` makes the next RCPT wait until `release()`, to catch a worker mid-send.
    """

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Condition()
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.released = threading.Event()
        self.refuse_rcpt: str | None = None  # e.g. "550 5.1.1 No such user"
        self.pipelining = True  # offers PIPELINING (RFC 2920), as production relays do

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802, PLR0913
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse_rcpt:
            return self.refuse_rcpt
        if self.hold.is_set():
            import asyncio

            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content,
                }
            )
            self.lock.notify_all()
        return "250 2.0.0 Ok: queued as TEST"

    def wait_for_count(self, count: int, timeout: float) -> bool:
        """Block until `count` mails have arrived (True) or the timeout passes (False)."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.messages) >= count, timeout)

    def hold_rcpt(self) -> None:
        self.released.clear()
        self.holding.clear()
        self.hold.set()

    def release(self) -> None:
        self.hold.clear()
        self.released.set()

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
        self.refuse_rcpt = None
        self.pipelining = True
        self.release()

    def message_ids(self) -> list[str]:
        ids = []
        for m in self.messages:
            found = re.search(rb"^Message-ID: (\S+)", m["data"], re.M | re.I)
            ids.append(found.group(1).decode() if found else "")
        return ids


@pytest.fixture(scope="session")
def _sink_server() -> Iterator[Sink]:
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_SINK_PORT)
    controller.start()
    yield sink
    sink.release()
    controller.stop()


@pytest.fixture
def sink(_sink_server: Sink) -> Iterator[Sink]:
    """The SMTP server the app sends to, emptied for this test."""
    _sink_server.reset()
    yield _sink_server
    _sink_server.reset()


@pytest.fixture
def factories(ctx):
    from tests import factories as f

    return f


@pytest.fixture
def login_as(client):
    """Log the test client in as `user` in `org`: a live session row, its token in the cookie."""

    def _login(user, org=None) -> None:
        with client.session_transaction() as sess:
            sess["_user_id"] = session_token(client.application, user)
            sess["_fresh"] = True
            if org is not None:
                sess["org_id"] = org.id

    return _login


def session_token(app, user) -> str:
    """Open a server-side session for `user` (committed) and return the token its cookie holds."""
    from app import sessions
    from app.extensions import db

    with app.app_context():
        sessions.begin(user)
        db.session.commit()
    return user.get_id()


def csrf_token(client) -> str:
    """The CSRF token of the client's session, read from a page like a browser would."""
    html = client.get("/").get_data(as_text=True)
    found = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture
def post(client):
    """POST a form with a valid CSRF token."""

    def _post(url: str, data: dict | None = None, **kwargs):
        return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)}, **kwargs)

    return _post


@pytest.fixture
def run_worker(ctx):
    """Run a real RQ worker (non-forking, in this process) until the queues are empty."""
    from rq import SimpleWorker

    from app.extensions import redis
    from app.queues import ALL, queue

    def _run() -> None:
        SimpleWorker([queue(n) for n in ALL], connection=redis.client).work(burst=True)

    return _run


class SecondSink(Sink):
    """Another SMTP server on its own port, that a test can stop and start (a provider outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.port = _free_port()
        self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def second_sink() -> Iterator[SecondSink]:
    """A second SMTP server, not started: start() it when the test wants it up."""
    server = SecondSink()
    yield server
    server.release()
    server.stop()


def closed_port() -> int:
    """A port nobody listens on (connection refused)."""
    return _free_port()


SINK_PORT = _SINK_PORT


from tests.mailgun_contract import mailgun_server  # noqa: E402,F401 - the contract server fixture
