"""Open-pixel and click-redirect throughput under gunicorn (targets: pixel_rps / bare_rps >= 0.6,
pixel p99 <= 25 ms, no answered hit lost).

Seeds one org with a sent campaign (BENCH_MESSAGES messages, sent an hour ago) and serves the app
with gunicorn as production does: `-w 2 -k gthread --threads 8` (BENCH_WORKERS / BENCH_THREADS to
try others), HERALD_ENV=production with a generated SECRET_KEY and ENCRYPTION_KEYS. The WSGI app is
bench/_tracking_app.py: the real app plus a bare endpoint (no database, no Redis, same hooks) for
the baseline. Then `wrk` (a second process, 32 keep-alive connections) loads for BENCH_SECONDS
each, in 3 interleaved rounds (bare, pixel, click, bare, ...: a slow spell of this shared machine
weighs on all alike): GET /bench/bare, the pixel URLs (random messages, a desktop Chrome user
agent) and the click URLs (302, not followed), after a short warm-up of each. Hits are answered
once spooled (app/tracking/spool.py) and stored by each worker's writer thread within
milliseconds; a graceful stop stores the rest. Then the pixels once more at about half
that rate (each connection pauses a random time between requests), for the latency without
queueing. Finally the stored opened / clicked events are counted against the 2xx/3xx responses
wrk received. Requests still in flight when wrk stops may be stored without being counted as
answered, so stored may exceed answered by up to 32 per phase; lost = answered - stored when
positive. Needs `wrk` (Debian: apt-get install wrk).
Last line: pixel_rps=<n> click_rps=<n> bare_rps=<n> ratio=<pixel/bare> p99_ms=<n> lost=<n>
p99_saturated_ms=<n> bare_p99_saturated_ms=<n>. `p99_ms` is the pixel's p99 in the paced phase (half
the saturated rate): at saturation every one of the 32 connections always has a request queued, so
p99 there measures the queue (mean latency = 32 / rps), for the bare endpoint too; both saturated
figures are printed beside it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from _db import app_with_org, draft_campaign, with_database

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "2000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "21"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")  # gunicorn -w
THREADS = os.environ.get("BENCH_THREADS", "8")  # gunicorn gthread --threads
# One listening socket per worker, so the kernel spreads the 32 connections over the workers;
# without it one worker often accepts nearly all of them (BENCH_GUNICORN_ARGS="" to see).
EXTRA_ARGS = os.environ.get("BENCH_GUNICORN_ARGS", "--reuse-port").split()
WARMUP_SECONDS = 3
ROUNDS = 3  # each endpoint's BENCH_SECONDS are split into this many interleaved rounds
ATTEMPTS = 3  # a measured phase where one worker did most of the work is run again
CONNECTIONS = 32
ROOT = Path(__file__).resolve().parent.parent
LINKS = ("https://careers.example.com/jobs/42", "https://example.com/about")
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

# One path per line in args[1]; each request picks one at random. done() prints one RESULT line
# with the counts of all threads (wrk times in microseconds).
LUA = """
local threads, counter, paths = {}, 0, {}
wrk.headers["User-Agent"] = "%(ua)s"
wrk.headers["Accept"] = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() * 1000 + id)
  ok, bad, sent = 0, 0, 0
end

function request()
  sent = sent + 1
  return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
  if status >= 200 and status < 400 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local good, wrong, written = 0, 0, 0
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    wrong = wrong + t:get("bad")
    written = written + t:get("sent")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%%d ok=%%d bad=%%d sent=%%d duration_us=%%d p50_us=%%d p90_us=%%d p99_us=%%d "
    .. "max_us=%%d connect=%%d read=%%d write=%%d timeout=%%d\\n",
    summary.requests, good, wrong, written, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.timeout))
end
"""

PACED = """
function delay()
  return math.random(0, 2 * %(ms)d)  -- random, so the connections do not fire in step
end
"""


def _seed() -> tuple[list[str], list[str]]:
    """A sent campaign of MESSAGES invitations; the pixel and click paths of its messages."""
    from sqlalchemy import select, text

    from app import clock
    from app.campaigns import services
    from app.extensions import db
    from app.mail.outbox import kick_dispatcher
    from app.mail.tracked_links import click_path, pixel_path
    from app.models import Campaign, CampaignStatus, Message

    app, org_id, user_id = app_with_org()
    with app.app_context():
        org, user, campaign = draft_campaign(org_id, user_id, MESSAGES)
        assert services.launch(org, campaign, user, None) == MESSAGES
        db.session.commit()
        kick_dispatcher()  # as the launch route does
        sent = clock.now() - timedelta(hours=1)
        db.session.execute(
            text(
                "UPDATE messages SET status = 'sent', sent_at = :at, delivered_at = :at,"
                " delivery = 'delivered' WHERE campaign_id = :c"
            ),
            {"at": sent, "c": campaign.id},
        )
        row = db.session.get(Campaign, campaign.id)
        row.status, row.finished_at = CampaignStatus.SENT, sent
        db.session.commit()
        ids = db.session.scalars(select(Message.id).where(Message.campaign_id == campaign.id)).all()
        return [pixel_path(i) for i in ids], [click_path(i, url) for i in ids for url in LINKS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "HERALD_ENV": "production",
        "PYTHONPATH": str(ROOT),
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    args = [str(gunicorn), "-w", WORKERS, "-k", "gthread", "--threads", THREADS]
    args += [*EXTRA_ARGS, "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT)]
    args.append("bench._tracking_app:app")
    proc = subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()[-3000:]}")


def _worker_cpu(master: int) -> dict[int, int]:
    """CPU ticks (user + system) used so far by each worker process of the gunicorn master."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # fields[1] is the parent pid
            ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def _wrk(port: int, script: Path, paths: Path, seconds: int) -> dict[str, float]:
    wrk = shutil.which("wrk")
    args = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script)]
    args += [f"http://127.0.0.1:{port}", "--", str(paths)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def _stored() -> dict[str, int]:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        rows = conn.execute(
            "SELECT type, count(*) FROM events"
            " WHERE type IN ('opened', 'clicked', 'reclassified') GROUP BY type"
        ).fetchall()
    return {kind: n for kind, n in rows}


def _merge(total: dict | None, part: dict) -> dict:
    """Rounds summed: requests and time add up; latency percentiles keep the worst round."""
    if total is None:
        return dict(part)
    merged = dict(total)
    for key in ("requests", "ok", "bad", "sent", "duration_us", "connect", "read", "write"):
        merged[key] = total[key] + part[key]
    merged["timeout"] = total["timeout"] + part["timeout"]
    for key in ("p50_us", "p90_us", "p99_us", "max_us"):
        merged[key] = max(total[key], part[key])
    merged["rps"] = merged["requests"] / (merged["duration_us"] / 1e6)
    merged["split"] = [(a + b) / 2 for a, b in zip(total["split"], part["split"], strict=False)]
    return merged


def _show(name: str, r: dict[str, float]) -> None:
    errors = int(r["connect"] + r["read"] + r["write"] + r["timeout"])
    print(
        f"{name:11} {int(r['requests']):6d} req in {r['duration_us'] / 1e6:.1f} s = "
        f"{r['rps']:7.0f}/s  p50 {r['p50_us'] / 1000:.1f} ms  p90 {r['p90_us'] / 1000:.1f} ms  "
        f"p99 {r['p99_us'] / 1000:.1f} ms  max {r['max_us'] / 1000:.0f} ms  "
        f"non-2xx/3xx {int(r['bad'])}  socket errors {errors}  "
        f"workers' CPU {'/'.join(f'{x:.0%}' for x in r['split'])}",
        flush=True,
    )


def run() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/tracking.py needs wrk (Debian/Ubuntu: apt-get install wrk)")
    started = time.perf_counter()
    pixels, clicks = _seed()
    print(f"seeded {MESSAGES} sent messages in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        work = Path(tmp)
        script = work / "load.lua"
        script.write_text(LUA % {"ua": USER_AGENT})
        files = {"bare": ["/bench/bare"], "pixel": pixels, "click": clicks}
        for name, lines in files.items():
            (work / f"{name}.txt").write_text("\n".join(lines) + "\n")
        port = _free_port()
        log = work / "gunicorn.log"
        server = _serve(port, log)
        try:
            # per endpoint: 2xx/3xx answered, and requests written but not answered at the stop
            answered = dict.fromkeys(files, 0)
            abandoned = dict.fromkeys(files, 0)

            def load(name: str, lua: Path, seconds: int) -> dict[str, float]:
                before = _worker_cpu(server.pid)
                result = _wrk(port, lua, work / f"{name}.txt", seconds)
                after = _worker_cpu(server.pid)
                answered[name] += int(result["ok"])
                abandoned[name] += int(result["sent"] - result["requests"])
                used = [after[pid] - before.get(pid, 0) for pid in after] or [1]
                result["split"] = sorted((u / max(1, sum(used)) for u in used), reverse=True)
                return result

            def balanced(result: dict) -> bool:
                """Keep-alive connections stay with the worker that accepted them, and the
                kernel may hand most of 32 simultaneous connects to one worker: then that
                worker does all the work (see gunicorn issues 2817, 3433). Such a run measures
                one core, not the configured workers."""
                return min(result["split"]) >= 0.5 / len(result["split"])

            results: dict[str, dict] = {}
            for name in files:  # warm-up: connection pools, imports, the crawler-detect cache
                load(name, script, WARMUP_SECONDS)
            # Interleaved rounds (bare, pixel, click, bare, ...) so that a slow spell of this
            # shared machine weighs on every endpoint alike; each figure sums its rounds.
            for _ in range(ROUNDS):
                for name in files:
                    for attempt in range(1, ATTEMPTS + 1):
                        result = load(name, script, SECONDS // ROUNDS)
                        _show(name, result)
                        if balanced(result):
                            break
                        note = "again" if attempt < ATTEMPTS else "kept, though"
                        print(f"{' ' * 12}one worker did most of the work: measured {note}")
                    results[name] = _merge(results.get(name), result)
            for name in files:
                _show(f"{name} (all)", results[name])
            # The same pixels at about half the saturated rate: with 32 always-busy connections
            # latency is mostly queueing (mean = 32 / rps), so this shows the service time.
            pace_ms = CONNECTIONS * 1000 / (results["pixel"]["rps"] / 2)
            paced = work / "paced.lua"
            paced.write_text(script.read_text() + PACED % {"ms": round(pace_ms)})
            results["paced"] = load("pixel", paced, SECONDS)
            _show("paced pixel", results["paced"])
            time.sleep(1.0)  # let requests in flight when wrk stopped finish
        finally:
            server.terminate()
            server.wait(timeout=30)
        lines = log.read_text().splitlines()
        problems = [i for i, x in enumerate(lines) if "Traceback" in x or "ERROR" in x]
        if problems:
            first = problems[0]
            print(f"server log: {len(problems)} error lines; the first, with what follows:")
            print("\n".join(x[:300] for x in lines[first : first + 30]))
    stored = _stored()
    lost = 0
    for name, kind in (("pixel", "opened"), ("click", "clicked")):
        have = stored.get(kind, 0)
        lost += max(0, answered[name] - have)
        # A request wrk abandoned at a stop may or may not have been served and stored, so
        # stored - answered lies in [-lost, abandoned - lost]: == abandoned proves nothing lost.
        extra = have - answered[name]
        verdict = (
            "none lost"
            if extra == abandoned[name]
            else f"lost between {max(0, -extra)} and {abandoned[name] - extra}"
        )
        print(
            f"{kind}: answered {answered[name]} (warm-ups included), stored {have}, "
            f"abandoned at wrk's stops {abandoned[name]}: {verdict}"
        )
    print(f"reclassified events (link bursts): {stored.get('reclassified', 0)}")
    pixel, click, bare, paced = (results[k] for k in ("pixel", "click", "bare", "paced"))
    print(f"total {time.perf_counter() - started:.0f} s")
    print(
        f"pixel_rps={pixel['rps']:.0f} click_rps={click['rps']:.0f} bare_rps={bare['rps']:.0f} "
        f"ratio={pixel['rps'] / bare['rps']:.2f} p99_ms={paced['p99_us'] / 1000:.1f} lost={lost} "
        f"p99_saturated_ms={pixel['p99_us'] / 1000:.1f} bare_p99_saturated_ms="
        f"{bare['p99_us'] / 1000:.1f}"
    )


if __name__ == "__main__":
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    if not os.environ.get("ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    with_database(run)
