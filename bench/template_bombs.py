"""Template bombs: for each payload in tests/bombs.py, a fresh process imports the sandbox,
compiles and renders only that payload (HTML environment, sample data) as one message, and
reports the growth of its peak RSS (ru_maxrss after the render minus before it) and the time.
Goal: every payload refused with a clear message, under 64 MB and 2.5 s each.

Needs no database or Redis. Each child has a 2 GB address-space limit and a 60 s timeout, so
a sandbox that fails shows as a MemoryError or a timeout rather than hurting the machine.
Last line: payloads=N max_rss_growth_mb=.. max_seconds=.. refused=N/N
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bombs import BOMBS, CALLABLES  # noqa: E402

GOAL_MB, GOAL_S = 64, 2.5
ORDINARY = [
    (
        "ordinary_loop",
        "{% for s in ['Intro', 'Tech', 'Team'] %}<p>{{ loop.index }}: {{ s }}</p>"
        "{% endfor %}<p>Hi {{ candidate.first_name }}, {{ job.title|upper }}</p>",
    ),
]

CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from app.mail import sandbox
from app.mail.catalogue import sample_context
source = sys.stdin.read()
env = sandbox.make_env()
context = sample_context()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    with sandbox.message_budget():
        out = sandbox.render_bounded(sandbox.compile_source(env, source), context)
    result, message = "rendered", f"{len(out)} characters"
except sandbox.TemplateProblem as exc:
    result, message = "refused", str(exc)
except BaseException as exc:
    result, message = "failed", f"{type(exc).__name__}: {exc}"[:200]
seconds = time.perf_counter() - start
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"result": result, "message": message, "mb": growth, "s": seconds}))
"""


def run(source: str) -> dict:
    """One payload in a fresh interpreter."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    except subprocess.TimeoutExpired:
        return {"result": "failed", "message": "timeout (60 s)", "mb": 0.0, "s": 60.0}
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"result": "failed", "message": done.stderr[-200:], "mb": 0.0, "s": 0.0}
    return json.loads(lines[-1])


def main() -> None:
    only = set(sys.argv[1:])
    rows = []
    for name, source in [*BOMBS, *CALLABLES, *ORDINARY]:
        if only and name not in only:
            continue
        row = run(source) | {"name": name, "bomb": name not in dict(ORDINARY)}
        rows.append(row)
        flag = "" if row["mb"] < GOAL_MB and row["s"] < GOAL_S else "  OVER GOAL"
        print(
            f"{name:24} {row['result']:8} {row['mb']:7.1f} MB {row['s']:6.2f} s  "
            f"{row['message'][:90]}{flag}",
            flush=True,
        )
    bombs = [r for r in rows if r["bomb"]]
    refused = sum(r["result"] == "refused" for r in bombs)
    print(
        f"payloads={len(bombs)} max_rss_growth_mb={max(r['mb'] for r in rows):.1f} "
        f"max_seconds={max(r['s'] for r in rows):.2f} refused={refused}/{len(bombs)}"
    )


if __name__ == "__main__":
    main()
