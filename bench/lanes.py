"""Password resets while a throttled campaign sends (goal: reset_p99_s <= 5, errors = 0).

A 10,000-recipient invitation campaign at the org's rate of 60/min is sending through 2 real
`worker.py` processes to an aiosmtpd sink in its own process; the app is served by gunicorn
(`-w 2 -k gthread --threads 4`, HERALD_ENV=production). Once the campaign has sent its burst and
goes at its rate, BENCH_RESETS (100) password resets are requested over HTTP, from 4 client
threads at once (each: GET /forgot for its form and cookie, then POST /forgot for one of 100
teammates of the org). A reset's time runs from just before its POST until the sink accepted
its message (the sink notes the time of each DATA). The reset limit per IP is raised through its
setting (PASSWORD_RESET_LIMIT_PER_IP=100000: every request comes from 127.0.0.1); the login
limits are not in the way of /forgot. A 429, any answer but the redirect, or a reset the sink
has not received 60 s after the last request is an error.
Last line: reset_p50_s=<n> reset_p99_s=<n> errors=<n>
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing as mp
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from _db import app_with_org, draft_campaign, with_database

ROOT = Path(__file__).resolve().parent.parent
RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS", "10000"))
RESETS = int(os.environ.get("BENCH_RESETS", "100"))
CLIENTS = 4
STEADY_S = 20
WORKERS = 2
RATE = 60  # the org's sends per minute
SPAWN = mp.get_context("spawn")


# ---- the sink: when each message was accepted --------------------------------------------------


class _TimingHandler:
    """Accepts every message; appends "<recipient> <unix time>" for each to a file."""

    def __init__(self, log: str) -> None:
        self.log = open(log, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.log.write(f"{envelope.rcpt_tos[0]} {time.time():.6f}\n")
        return "250 OK"


def _sink_main(log: str, port_out) -> None:  # noqa: ANN001
    from aiosmtpd.smtp import SMTP

    handler = _TimingHandler(log)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="sink.localhost"), "127.0.0.1", 0)
    )
    port_out.send(server.sockets[0].getsockname()[1])
    loop.run_forever()


def _arrivals(log: str) -> dict[str, float]:
    """Recipient → when the sink accepted its (first) message."""
    seen: dict[str, float] = {}
    for line in Path(log).read_text().splitlines():
        rcpt, _, at = line.partition(" ")
        seen.setdefault(rcpt, float(at))
    return seen


# ---- processes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as one
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _serve(port: int, log: Path) -> subprocess.Popen:
    """gunicorn as production runs it; returns once /healthz answers."""
    env = {**os.environ, "HERALD_ENV": "production", "PYTHONPATH": str(ROOT)}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    args = [gunicorn, "-w", "2", "-k", "gthread", "--threads", "4"]
    proc = _start([*args, "-b", f"127.0.0.1:{port}", "wsgi:app"], log, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    _stop([proc])
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()[-3000:]}")


# ---- the data and the load ---------------------------------------------------------------------


def _prepare() -> tuple[object, list[str]]:
    """An org at 60/min with 100 teammates (reset0@... reset99@) and a launched campaign."""
    from app.campaigns import services
    from app.extensions import db
    from app.models import Membership, Role, User
    from app.outbox.queue import wake

    app, org_id, user_id = app_with_org()
    with app.app_context():
        emails = [f"reset{n}@example.com" for n in range(RESETS)]
        users = [User(email=e, name="Teammate", password_hash="x") for e in emails]
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all(Membership(org_id=org_id, user_id=u.id, role=Role.VIEWER) for u in users)
        db.session.commit()
        org, user, campaign = draft_campaign(
            org_id, user_id, RECIPIENTS, send_rate_per_minute=RATE, dkim_enabled=False
        )
        written = services.launch(org, campaign, user, None)
        db.session.commit()
        wake()  # as the launch route does: its dispatchers wait in Redis
        print(f"launched {written} invitations at {RATE}/min", flush=True)
    return app, emails


def _request_reset(port: int, email: str) -> tuple[float, int]:
    """GET the form (cookie, CSRF token), then POST it: (when the POST began, its status)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/forgot")
    page = conn.getresponse()
    body = page.read().decode()
    cookies = [c.split(";", 1)[0] for c in page.headers.get_all("Set-Cookie") or []]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
    if page.status != 200 or token is None:
        return time.time(), page.status
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)}
    began = time.time()
    conn.request("POST", "/forgot", body=form, headers=headers)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return began, answer.status


def _load(port: int, emails: list[str]) -> dict[str, tuple[float, int]]:
    """Every reset requested from CLIENTS threads at once: email → (began, status)."""
    results: dict[str, tuple[float, int]] = {}
    shares = [emails[n::CLIENTS] for n in range(CLIENTS)]

    def client(mine: list[str]) -> None:
        for email in mine:
            try:
                results[email] = _request_reset(port, email)
            except OSError:
                results[email] = (time.time(), 0)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _wait_for(log: str, what, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not what(_arrivals(log)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def run() -> None:
    work = Path(tempfile.mkdtemp(prefix="herald-lanes-"))
    log = str(work / "sink.log")
    Path(log).touch()
    receive, send = SPAWN.Pipe(duplex=False)
    sink = SPAWN.Process(target=_sink_main, args=(log, send), daemon=True)
    sink.start()
    smtp_port = receive.recv()
    os.environ.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_SECURITY="none",
        PASSWORD_RESET_LIMIT_PER_IP="100000",  # every request comes from 127.0.0.1
        LOG_LEVEL=os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    )
    _, emails = _prepare()
    port = _free_port()
    procs = [_serve(port, work / "gunicorn.log")]
    try:
        for n in range(WORKERS):
            procs.append(_start([sys.executable, "worker.py"], work / f"worker{n}.log", os.environ))
        if not _wait_for(log, lambda seen: len(seen) >= 15, 120):  # the burst, then 1 a second
            raise RuntimeError(f"the campaign is not sending; see {work}")
        steady = time.time()
        time.sleep(STEADY_S)  # the campaign at its rate, before any reset
        paced = sum(1 for at in _arrivals(log).values() if at >= steady)
        print(f"campaign at its rate: {paced} invitations in {STEADY_S} s; {RESETS} resets now")
        started = time.time()
        requested = _load(port, emails)
        print(f"{RESETS} requests answered in {time.time() - started:.1f} s", flush=True)
        _wait_for(log, lambda seen: all(e in seen for e in emails), 60)
        seen = _arrivals(log)
        ended = time.time()
    finally:
        _stop(procs)
        sink.terminate()
    invitations = sum(1 for rcpt, at in seen.items() if rcpt.startswith("c") and at >= started)
    took = [seen[e] - requested[e][0] for e in emails if e in seen and requested[e][1] == 302]
    errors = sum(1 for e in emails if requested[e][1] != 302 or e not in seen)
    statuses = sorted({status for _, status in requested.values()})
    print(f"answers: {statuses}; resets received: {len(took)} of {RESETS}")
    print(f"invitations accepted meanwhile: {invitations} in {ended - started:.0f} s")
    if took:
        mean = statistics.mean(took)
        print(f"reset seconds: min {min(took):.2f} mean {mean:.2f} max {max(took):.2f}")
    p50 = _percentile(took, 50) if took else float("nan")
    p99 = _percentile(took, 99) if took else float("nan")
    print(f"reset_p50_s={p50:.2f} reset_p99_s={p99:.2f} errors={errors}")


if __name__ == "__main__":
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    if not os.environ.get("ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    with_database(run)
