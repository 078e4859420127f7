"""Send throughput of whole campaigns through 2 real workers, against raw smtplib.

Runs against the configured PostgreSQL/Redis (DATABASE_URL / REDIS_URL) in a throwaway database,
with throttling off (huge org and provider rates and burst) and DKIM off. Each phase launches its
own campaign (its own job and candidates, so per-candidate caps never shrink a phase) through the
real services, starts 2 `worker.py` processes with the phase's settings, and times them until
every row is `sent` (polled every 0.5 s):
- send:    20,000 invitations to an aiosmtpd sink on 127.0.0.1 (a process of its own);
- rtt20:   10,000 through a TCP proxy adding a 20 ms round trip (bench/smtp_latency.py), with the
           default SEND_CONCURRENCY;
- mailgun: 10,000 through the Mailgun provider to the local contract server
           (tests/mailgun_contract.py) in a process of its own, answering concurrently, 50 ms
           added to each answer.
raw_per_s: one raw smtplib connection sending copies of the first message the sink received,
MAIL/RCPT/DATA, same run. dkim_ms: app.mail.dkim.bench_sign() on its own.
Goals: ratio >= 0.3, rtt20_ratio >= 0.25, mailgun_ratio >= 0.2, dkim_ms <= 1.5. The whole run
takes a few minutes. Last line:
send_per_s=<n> raw_per_s=<n> ratio=<n> rtt20_per_s=<n> rtt20_ratio=<n> mailgun_per_s=<n>
mailgun_ratio=<n> dkim_ms=<n>
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _db import app_with_org, draft_campaign, with_database
from smtp_latency import proxy_main

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))  # e.g. 0.1 for a quick try
PHASES = {"send": 20_000, "rtt20": 10_000, "mailgun": 10_000}
RAW_MESSAGES = int(10_000 * SCALE)
WORKERS = 2
HUGE = 100_000_000  # sends per minute / bucket size: throttling effectively off
MAILGUN_DELAY_S = 0.05
SPAWN = mp.get_context("spawn")  # no fork: children must not inherit the parent's DB sockets


# ---- the servers, each a process of its own ---------------------------------------------------


class _CountingHandler:
    """Accepts every message and counts it; keeps the first one (for the baseline)."""

    def __init__(self, counter, keep: str) -> None:  # noqa: ANN001 - a multiprocessing RawValue
        self.counter, self.keep = counter, keep

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        if self.counter.value == 0:
            first = {
                "mail_from": envelope.mail_from,
                "rcpt": envelope.rcpt_tos[0],
                "raw": base64.b64encode(envelope.original_content).decode("ascii"),
            }
            Path(self.keep).write_text(json.dumps(first))
        self.counter.value += 1  # only this process's event loop writes it
        return "250 OK"


def _sink_main(counter, keep: str, port_out) -> None:  # noqa: ANN001
    from aiosmtpd.smtp import SMTP

    handler = _CountingHandler(counter, keep)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    factory = lambda: SMTP(handler, hostname="sink.localhost", data_size_limit=None, loop=loop)  # noqa: E731
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    port_out.send(server.sockets[0].getsockname()[1])
    port_out.close()
    loop.run_forever()


def _mailgun_main(port_out) -> None:  # noqa: ANN001
    sys.path.insert(0, str(ROOT))
    from tests.mailgun_contract import MailgunContract

    server = MailgunContract(answer_delay=MAILGUN_DELAY_S, keep=False).start()
    port_out.send(server.url)
    port_out.close()
    signal.pause()


def _spawn(target, *args) -> tuple[mp.Process, object]:  # noqa: ANN001
    """A daemon process that sends back one value (its port or URL) once it serves."""
    receive, send = SPAWN.Pipe(duplex=False)
    process = SPAWN.Process(target=target, args=(*args, send), daemon=True)
    process.start()
    if not receive.poll(30):
        raise RuntimeError(f"{target.__name__} did not start")
    return process, receive.recv()


@dataclass(frozen=True)
class Captured:
    """The first message the sink received, as sent: envelope and bytes."""

    mail_from: str
    rcpt: str
    raw: bytes


# ---- raw smtplib baseline ----------------------------------------------------------------------


def raw_baseline(port: int, n: int, outgoing: Captured) -> float:
    """Messages per second on one persistent smtplib connection, MAIL/RCPT/DATA each."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    conn.ehlo()
    started = time.perf_counter()
    for _ in range(n):
        conn.sendmail(outgoing.mail_from, [outgoing.rcpt], outgoing.raw)
    elapsed = time.perf_counter() - started
    conn.quit()
    return n / elapsed


# ---- a phase -----------------------------------------------------------------------------------


def launch(app, org_id: int, user_id: int, tag: str, recipients: int) -> int:  # noqa: ANN001
    """A job, `recipients` candidates tagged `tag` and a launched campaign to them; its id."""
    from app.campaigns import services
    from app.extensions import db
    from app.queues import send_queue

    with app.app_context():
        org, user, campaign = draft_campaign(
            org_id, user_id, recipients, tag, send_rate_per_minute=HUGE, dkim_enabled=False
        )
        started = time.perf_counter()
        assert services.launch(org, campaign, user, None) == recipients
        db.session.commit()  # as the launch route does
        print(f"  {tag}: launched {recipients} (fan-out {time.perf_counter() - started:.1f} s)")
        send_queue().empty()  # the phase wakes its own dispatchers once its workers listen
        return campaign.id


def _sent(campaign_id: int) -> tuple[int, dict]:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Message

    rows = db.session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status)
    ).all()
    db.session.rollback()
    counts = {str(status): n for status, n in rows}
    return counts.get("sent", 0), counts


def _workers(env: dict, logs: Path) -> list[subprocess.Popen]:
    procs = []
    for n in range(WORKERS):
        with (logs / f"worker{n}.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(ROOT / "worker.py")],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_phase(app, campaign_id: int, total: int, env: dict, logs: Path) -> float:  # noqa: ANN001
    """2 workers with `env` send the campaign: messages per second."""
    from rq import Worker

    from app.extensions import redis
    from app.outbox import queue

    with app.app_context():
        procs = _workers(env, logs)
        try:
            deadline = time.monotonic() + 60
            while len(Worker.all(connection=redis.client)) < WORKERS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers did not start; see {logs}")
                time.sleep(0.2)
            started = time.perf_counter()
            queue.wake(WORKERS)
            last, last_change = 0, started
            while True:
                time.sleep(0.5)
                sent, counts = _sent(campaign_id)
                now = time.perf_counter()
                if sent != last:
                    last, last_change = sent, now
                if sent >= total:
                    return total / (now - started)
                if now - last_change > 60:
                    raise RuntimeError(f"sending stalled at {counts}; see {logs}")
        finally:
            _stop(procs)


def _mailgun_account(app, org_id: int, url: str) -> None:  # noqa: ANN001
    """The org sends through Mailgun (the contract server) from now on."""
    sys.path.insert(0, str(ROOT))
    from app.crypto import encrypt
    from app.extensions import db
    from app.models import ProviderAccount
    from tests.mailgun_contract import DOMAIN, KEY

    with app.app_context():
        account = ProviderAccount(
            org_id=org_id,
            kind="mailgun",
            label="Mailgun",
            settings={"domain": DOMAIN, "region": "us"},
            secret_encrypted=encrypt(KEY),
            position=0,
        )
        db.session.add(account)
        db.session.commit()


# ---- the run -----------------------------------------------------------------------------------


def run() -> None:
    from app.mail.dkim import bench_sign

    counter = SPAWN.RawValue("q", 0)
    handle, keep = tempfile.mkstemp(prefix="herald-sink-", suffix=".json")
    os.close(handle)
    sink, sink_port = _spawn(_sink_main, counter, keep)
    proxy, proxy_port = _spawn(proxy_main, sink_port, 20.0)
    mailgun, mailgun_url = _spawn(_mailgun_main)
    logs = Path(tempfile.mkdtemp(prefix="herald-send-bench-"))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others skew figures)")
    base = dict(
        os.environ,
        SMTP_HOST="127.0.0.1",
        SMTP_SECURITY="none",
        PROVIDER_RATE_PER_MINUTE=str(HUGE),
        SEND_BURST=str(HUGE),
        MAILGUN_BASE_URL=mailgun_url,
        LOG_LEVEL=os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    )
    os.environ.update(base, SMTP_PORT=str(sink_port))
    rates = {}
    try:
        app, org_id, user_id = app_with_org()
        for phase, recipients in PHASES.items():
            total = int(recipients * SCALE)
            if phase == "mailgun":
                _mailgun_account(app, org_id, mailgun_url)
            campaign_id = launch(app, org_id, user_id, phase, total)
            port = proxy_port if phase == "rtt20" else sink_port
            rates[phase] = run_phase(app, campaign_id, total, dict(base, SMTP_PORT=str(port)), logs)
            print(f"  {phase}: {rates[phase]:.0f}/s (sink has {counter.value})")
        data = json.loads(Path(keep).read_text())
        first = Captured(data["mail_from"], data["rcpt"], base64.b64decode(data["raw"]))
        raw_per_s = raw_baseline(sink_port, RAW_MESSAGES, first)
        print(f"  raw smtplib, one connection, {len(first.raw)} bytes: {raw_per_s:.0f}/s")
        shutil.rmtree(logs)  # kept when the run fails
    finally:
        for process in (sink, proxy, mailgun):
            process.terminate()
        Path(keep).unlink(missing_ok=True)
    dkim_ms = bench_sign()
    send, rtt, mg = rates["send"], rates["rtt20"], rates["mailgun"]
    print(
        f"send_per_s={send:.0f} raw_per_s={raw_per_s:.0f} ratio={send / raw_per_s:.2f} "
        f"rtt20_per_s={rtt:.0f} rtt20_ratio={rtt / raw_per_s:.2f} "
        f"mailgun_per_s={mg:.0f} mailgun_ratio={mg / raw_per_s:.2f} dkim_ms={dkim_ms:.2f}"
    )


if __name__ == "__main__":
    with_database(run)
