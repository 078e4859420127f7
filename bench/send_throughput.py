"""End-to-end send throughput of a 20,000-recipient campaign (target: >= 0.5 x raw smtplib).

Runs against the configured PostgreSQL/Redis (DATABASE_URL / REDIS_URL) in a throwaway database:
an aiosmtpd sink in its own process (accepts and drops, counts), a campaign launched through the
real services (fan-out writes the message rows), then 2 real `worker.py` processes each running
one `dispatch_due` until every row is `sent` (polled every 0.5 s). Throttling is off (huge org and
provider rates and burst), DKIM is off. Baseline in the same run: raw smtplib sending 20,000
copies of the first message a worker sent (the bytes the sink received) with MAIL/RCPT/DATA on one
persistent connection: `raw_per_s`, the baseline (goal: ratio >= 0.5, about 500 messages/s here:
half of what one raw connection does on this machine, about 1,000/s).
The same copies over 2 connections in 2 processes (one per worker) are printed too, with the
ratio against them (raw2_per_s, ratio2): the sink is then nearly the limit.
dkim_ms: app.mail.dkim.bench_sign() on its own, after the rest.
Last line: send_per_s=<n> raw_per_s=<n> ratio=<send/raw> dkim_ms=<n> rsa_ms=<n> (the RSA
signature alone, OpenSSL: the machine's floor under dkim_ms) raw2_per_s=<n> ratio2=<send/raw2>

`--profile` instead runs dispatch_due in this process on a smaller campaign
(BENCH_PROFILE_RECIPIENTS, default 2,000) against the same kind of sink: a warm-up batch, 2 batches
timed without profiler, the rest under cProfile with a tally of SQL statements per message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import cProfile
import io
import json
import multiprocessing as mp
import os
import pstats
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

ROOT = Path(__file__).resolve().parent.parent
RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS", "20000"))
PROFILE_RECIPIENTS = int(os.environ.get("BENCH_PROFILE_RECIPIENTS", "2000"))
WORKERS = 2
HUGE = 100_000_000  # sends per minute / bucket size: throttling effectively off
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "3600"))
TARGET_RATIO, TARGET_DKIM_MS = 0.5, 1.5
SPAWN = mp.get_context("spawn")  # no fork: children must not inherit the parent's DB sockets


# ---- the sink ---------------------------------------------------------------------------------


class _CountingHandler:
    """Accepts every message and counts it; keeps only the first one (for the baseline).
    Offers PIPELINING (RFC 2920) unless BENCH_SINK_PIPELINING=0, as production relays do
    (Postfix, Exim, Gmail, SES, Mailgun): aiosmtpd takes grouped commands in order, it only
    does not say so. smtplib, the baseline, never groups commands."""

    def __init__(self, counter, keep: str) -> None:  # noqa: ANN001 - a multiprocessing RawValue
        self.counter, self.keep = counter, keep
        self.pipelining = os.environ.get("BENCH_SINK_PIPELINING", "1") != "0"

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:  # noqa: ANN001, N802, PLR0913
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

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
    """The sink process: aiosmtpd on 127.0.0.1, a free port, until terminated."""
    from aiosmtpd.smtp import SMTP

    handler = _CountingHandler(counter, keep)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory() -> SMTP:
        return SMTP(handler, hostname="sink.localhost", data_size_limit=None, loop=loop)

    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    port_out.send(server.sockets[0].getsockname()[1])
    port_out.close()
    loop.run_forever()


@dataclass(frozen=True)
class Captured:
    """The first message the sink received, as sent: envelope and bytes."""

    mail_from: str
    rcpt: str
    raw: bytes


class Sink:
    """The sink process, its message count and the first message it got."""

    def __init__(self) -> None:
        self.counter = SPAWN.RawValue("q", 0)
        handle, self.keep = tempfile.mkstemp(prefix="herald-sink-", suffix=".json")
        os.close(handle)
        receive, send = SPAWN.Pipe(duplex=False)
        self.process = SPAWN.Process(
            target=_sink_main, args=(self.counter, self.keep, send), daemon=True
        )
        self.process.start()
        if not receive.poll(30):
            raise RuntimeError("the SMTP sink did not start")
        self.port: int = receive.recv()

    @property
    def count(self) -> int:
        return self.counter.value

    def first(self) -> Captured:
        data = json.loads(Path(self.keep).read_text())
        return Captured(data["mail_from"], data["rcpt"], base64.b64decode(data["raw"]))

    def cpu_seconds(self) -> float:
        """The sink's CPU time so far (Linux /proc; 0 elsewhere), to see whether it limits."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
        Path(self.keep).unlink(missing_ok=True)


# ---- raw smtplib baseline ----------------------------------------------------------------------


def _raw_sender(port: int, n: int, mail_from: str, rcpt: str, raw: bytes, ready, go, done) -> None:  # noqa: ANN001, PLR0913
    """One persistent connection, n x MAIL/RCPT/DATA of the same pre-serialized bytes."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    conn.ehlo()
    ready.release()
    go.wait()
    for _ in range(n):
        code, _ = conn.mail(mail_from)
        assert code == 250, code
        code, _ = conn.rcpt(rcpt)
        assert code == 250, code
        code, _ = conn.data(raw)
        assert code == 250, code
    done.put(n)
    conn.quit()


def raw_baseline(port: int, total: int, processes: int, outgoing: Captured) -> float:
    """Messages per second for `total` raw sends split over `processes` connections."""
    ready, go, done = SPAWN.Semaphore(0), SPAWN.Event(), SPAWN.Queue()
    each = total // processes
    args = (port, each, outgoing.mail_from, outgoing.rcpt, outgoing.raw, ready, go, done)
    procs = [SPAWN.Process(target=_raw_sender, args=args) for _ in range(processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=30):
            raise RuntimeError("a baseline sender could not connect")
    started = time.perf_counter()
    go.set()
    sent = sum(done.get(timeout=max(60, total / 20)) for _ in procs)
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join(10)
    return sent / elapsed


# ---- setup -------------------------------------------------------------------------------------


def _configure(port: int) -> None:
    """Settings for this process's app and the workers (read from the environment)."""
    os.environ.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_SECURITY="none",
        PROVIDER_RATE_PER_MINUTE=str(HUGE),
        SEND_BURST=str(HUGE),
        LOG_LEVEL=os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
    )


def launch(recipients: int) -> tuple[object, int]:
    """A migrated app, an org with throttling and DKIM off, a job, candidates (COPY) and a
    launched invitation campaign (services.create + services.launch). Returns (app, campaign id).
    """
    from app.campaigns import services
    from app.extensions import db
    from app.mail.outbox import kick_dispatcher
    from app.queues import send_queue

    app, org_id, user_id = app_with_org()
    with app.app_context():
        org, user, campaign = draft_campaign(
            org_id, user_id, recipients, send_rate_per_minute=HUGE, dkim_enabled=False
        )
        started = time.perf_counter()
        written = services.launch(org, campaign, user, None)
        db.session.commit()
        kick_dispatcher()  # as the launch route does
        assert written == recipients, written
        print(f"launched {written} messages (fan-out {time.perf_counter() - started:.1f} s)")
        queue = send_queue()
        if queue.count > 1:  # besides the one launch kicked: left by other runs on this Redis
            print(f"dropping {queue.count - 1} other job(s) from {queue.name}")
        queue.empty()  # the dispatcher launch kicked too: the run starts its own
        return app, campaign.id


def _status_counts(campaign_id: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Message

    rows = db.session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status)
    ).all()
    db.session.rollback()
    return {str(status): n for status, n in rows}


# ---- workers -----------------------------------------------------------------------------------


def _herald_workers() -> list:
    from rq import Worker

    from app.extensions import redis
    from app.queues import ALL

    return [w for w in Worker.all(connection=redis.client) if set(w.queue_names()) & set(ALL)]


def start_workers(log_dir: Path) -> list[subprocess.Popen]:
    """2 `worker.py` processes, each in its own process group; waits until both are listening."""
    if _herald_workers():
        raise SystemExit("Other RQ workers listen on Herald's queues on this Redis; stop them.")
    procs = []
    for n in range(WORKERS):
        with (log_dir / f"worker{n}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(ROOT / "worker.py")],
                    cwd=ROOT,
                    env=dict(os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as one
                )
            )
    deadline = time.monotonic() + 60
    while len(_herald_workers()) < WORKERS:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"workers did not start; see {log_dir}")
        time.sleep(0.2)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _wait_until_sent(campaign_id: int, log_dir: Path) -> float:
    """Poll the rows every 0.5 s until all are sent; seconds since the call."""
    started = time.perf_counter()
    last_print = last_sent = 0
    last_change = started
    while True:
        time.sleep(0.5)
        counts = _status_counts(campaign_id)
        sent = counts.get("sent", 0)
        now = time.perf_counter()
        if sent != last_sent:
            last_sent, last_change = sent, now
        if sent >= RECIPIENTS:
            print(f"  {now - started:5.1f} s: {counts}")
            return now - started
        if now - last_print >= 5:
            last_print = now
            print(f"  {now - started:5.1f} s: {counts}", flush=True)
        if now - last_change > 60 or now - started > TIMEOUT_S:
            raise RuntimeError(f"sending stalled at {counts}; see {log_dir}")


def send_with_workers(app, campaign_id: int, log_dir: Path) -> tuple[float, list]:  # noqa: ANN001
    """Time 2 workers sending everything: messages per second, and the dispatcher jobs."""
    from app.queues import send_queue

    with app.app_context():
        procs = start_workers(log_dir)
        try:
            queue = send_queue()
            dispatch = "app.jobs.send.dispatch_due"
            jobs = [
                queue.enqueue(dispatch, max_batches=10_000, job_timeout=int(TIMEOUT_S))
                for _ in range(WORKERS)
            ]
            elapsed = _wait_until_sent(campaign_id, log_dir)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for job in jobs:
                    job.refresh()
                if all(job.is_finished or job.is_failed for job in jobs):
                    break
                time.sleep(0.2)
            for job in jobs:
                print(f"  dispatcher {job.id[:8]} on {job.worker_name}: {job.return_value()}")
        finally:
            stop_workers(procs)
    return RECIPIENTS / elapsed, jobs


# ---- runs --------------------------------------------------------------------------------------


def run() -> None:
    from app.mail.dkim import bench_sign

    sink = Sink()
    load = os.getloadavg()[0]
    print(f"sink on 127.0.0.1:{sink.port}; load average {load:.1f} on {os.cpu_count()} CPUs")
    try:
        _configure(sink.port)
        app, campaign_id = launch(RECIPIENTS)
        logs = Path(tempfile.mkdtemp(prefix="herald-send-bench-"))
        cpu = sink.cpu_seconds()
        send_per_s, jobs = send_with_workers(app, campaign_id, logs)
        sink_busy = (sink.cpu_seconds() - cpu) * send_per_s / RECIPIENTS
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(logs)  # kept when the run fails
        both = all((job.return_value() or {}).get("sent", 0) > 0 for job in jobs)
        names = {job.worker_name for job in jobs}
        print(f"sink received {sink.count}; both workers sent: {both and len(names) == WORKERS}")
        print(f"app: {send_per_s:.0f}/s with {WORKERS} workers (sink busy {sink_busy:.0%})")
        outgoing = sink.first()  # exactly what a worker sent
        print(f"baseline message: {len(outgoing.raw)} bytes, as the sink received it")
        print(f"load average {os.getloadavg()[0]:.1f} (others running here skew every figure)")
        raw = {}
        for processes in (1, WORKERS):
            cpu = sink.cpu_seconds()
            raw[processes] = raw_baseline(sink.port, RECIPIENTS, processes, outgoing)
            busy = (sink.cpu_seconds() - cpu) * raw[processes] / RECIPIENTS
            print(
                f"raw smtplib, {processes} connection(s): {raw[processes]:.0f}/s "
                f"(sink busy {busy:.0%})"
            )
    finally:
        sink.stop()
    dkim_ms, rsa_ms = bench_sign(), rsa_sign_ms()
    print(f"DKIM: {dkim_ms:.2f} ms per message, of which the RSA signature alone {rsa_ms:.2f} ms")
    print(f"targets: ratio >= {TARGET_RATIO}, dkim_ms <= {TARGET_DKIM_MS}")
    raw_per_s, raw2_per_s = raw[1], raw[WORKERS]
    print(
        f"send: {send_per_s:.0f}/s; target ratio >= {TARGET_RATIO}: >= "
        f"{TARGET_RATIO * raw_per_s:.0f}/s on this machine now (about 500/s on a fast day)"
    )
    print(
        f"send_per_s={send_per_s:.0f} raw_per_s={raw_per_s:.0f} "
        f"ratio={send_per_s / raw_per_s:.2f} dkim_ms={dkim_ms:.2f} rsa_ms={rsa_ms:.2f} "
        f"raw2_per_s={raw2_per_s:.0f} ratio2={send_per_s / raw2_per_s:.2f}"
    )


def rsa_sign_ms(n: int = 500) -> float:
    """The floor under dkim_ms on this machine: OpenSSL's RSA-2048 signature of a SHA-256 hash
    alone (0.28-1.13 ms on this machine so far), in the same run."""
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    digest = hashlib.sha256(b"x" * 4096).digest()
    algorithm = Prehashed(hashes.SHA256())
    key.sign(digest, padding.PKCS1v15(), algorithm)
    started = time.perf_counter()
    for _ in range(n):
        key.sign(digest, padding.PKCS1v15(), algorithm)
    return (time.perf_counter() - started) * 1000 / n


class _SQLTally:
    """Statements run (and their time) per statement kind, from the engine's own events."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        from sqlalchemy import event

        self.engine, self.on = engine, False
        self.calls: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    @staticmethod
    def _kind(statement: str) -> str:
        text = " ".join(statement.split())
        if text.startswith("SELECT"):
            where = text.find(" WHERE ")
            text = text[text.find(" FROM ") : where + 60 if where > 0 else None]
            return "SELECT" + text[:110]
        return text[:100]

    def _before(self, conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001, PLR0913
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001, PLR0913
        if self.on:
            kind = self._kind(statement)
            self.calls[kind] += 1
            self.seconds[kind] += time.perf_counter() - conn.info.pop("bench_started")

    def _commit(self, conn) -> None:  # noqa: ANN001
        if self.on:
            self.calls["COMMIT (its time is not tallied)"] += 1

    def report(self, messages: int) -> None:
        total = sum(self.calls.values())
        print(f"SQL: {total / messages:.1f} statements/message (COMMIT included)")
        for kind, n in self.calls.most_common():
            ms = self.seconds[kind] * 1000 / messages
            print(f"  {n / messages:5.2f}/msg {ms:6.2f} ms/msg  {kind}")


def profile() -> None:
    """dispatch_due in this process on a PROFILE_RECIPIENTS campaign: a warm-up batch, a timed
    batch without profiler, then the rest under cProfile with an SQL statement tally."""
    global RECIPIENTS
    RECIPIENTS = PROFILE_RECIPIENTS
    sink = Sink()
    try:
        _configure(sink.port)
        app, campaign_id = launch(PROFILE_RECIPIENTS)
        from app.extensions import db
        from app.jobs.send import dispatch_due

        with app.app_context():
            dispatch_due(max_batches=1)  # warm up: connection, compiled template, caches
            started, cpu = time.perf_counter(), time.process_time()
            plain = dispatch_due(max_batches=2)["sent"]
            wall = (time.perf_counter() - started) * 1000 / plain
            cpu = (time.process_time() - cpu) * 1000 / plain
            print(f"without profiler: {wall:.1f} ms/msg ({cpu:.1f} ms of it this process's CPU)")
            tally = _SQLTally(db.engine)
            before = _status_counts(campaign_id).get("sent", 0)
            profiler = cProfile.Profile()
            tally.on = True
            started = time.perf_counter()
            profiler.enable()
            result = dispatch_due(max_batches=10_000, max_seconds=float("inf"))  # all of it
            profiler.disable()
            elapsed = time.perf_counter() - started
            tally.on = False
            sent = _status_counts(campaign_id).get("sent", 0) - before
        if not sent:
            raise SystemExit("Nothing was left to profile: raise BENCH_PROFILE_RECIPIENTS.")
        print(f"profiled dispatch_due: {result}, {sent} sent in {elapsed:.2f} s")
        print(f"{elapsed * 1000 / sent:.1f} ms/msg under the profiler; sink got {sink.count}")
        tally.report(sent)
        stats = pstats.Stats(profiler)
        print("app functions by cumulative time, per message:")
        rows = [
            (ct, f"{path.replace(str(ROOT) + '/', '')}:{line} {name}", calls)
            for (path, line, name), (_, calls, _, ct, _) in stats.stats.items()
            if path.startswith(str(ROOT / "app"))
        ]
        for ct, where, calls in sorted(rows, reverse=True)[:40]:
            print(f"  {ct * 1000 / sent:7.2f} ms  {calls / sent:5.2f} calls  {where}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
        if os.environ.get("BENCH_PROFILE_OUT"):
            profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])
    finally:
        sink.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile one in-process dispatcher")
    with_database(profile if parser.parse_args().profile else run)
