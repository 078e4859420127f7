# ruff: noqa: E501 - template text in the body generator reads best unwrapped
"""Server time of a live preview of a 20 KB template (target: median <= 50 ms).

Runs against the configured PostgreSQL/Redis (DATABASE_URL / REDIS_URL, as the app reads them) in
a throwaway database. Each request changes the template text in one place, as typing does (the
preview recompiles only the changed ~2 KB segment); `cold_ms` is a whole new template each time. Baseline in the same run: plain Jinja2 (not sandboxed) compiling and
rendering the same source. Last line: preview_ms=<median> p95_ms=<p95> ...
"""

from __future__ import annotations

import os
import statistics
import time

from _db import app_with_org, with_database
from jinja2 import Environment

RUNS = int(os.environ.get("BENCH_RUNS", "200"))
TARGET_MS = 50


def _body(n: int, cold: bool = False) -> str:
    """About 20 KB of realistic template: paragraphs, a details table, variables, a loop."""
    block = """<h2>Round {n}</h2>
<p>Hi {{{{ candidate.first_name }}}}, thank you for applying for <strong>{{{{ job.title }}}}</strong>
in {{{{ job.department }}}}. We would love to meet you on {{{{ interview.starts_at|datetime }}}}.</p>
<table class="details" role="presentation">
  <tr><td class="label">Format</td><td>{{{{ job.interview_format }}}}, {{{{ job.duration_minutes }}}} min</td></tr>
  <tr><td class="label">Where</td><td>{{{{ interview.location }}}}</td></tr>
</table>
{{% for step in ['Intro', 'Technical', 'Team'] %}}<p class="muted">Step {{{{ loop.index }}}}: {{{{ step }}}}</p>{{% endfor %}}
<p><a class="button" href="{{{{ invitation.url }}}}">Accept or decline</a></p>
"""
    parts, size, i = [], 0, 0
    while size < 20 * 1024:
        chunk = block.format(n=f"{i}.{n}" if cold else i)
        parts.append(chunk)
        size += len(chunk)
        i += 1
    return "".join(parts) + f"<!-- edit {n} -->"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run() -> None:
    from app.extensions import db
    from app.mail import catalogue
    from app.models import Organization, User
    from app.templates_editor.services import create_defaults

    app, org_id, user_id = app_with_org()
    with app.app_context():
        org, user = db.session.get(Organization, org_id), db.session.get(User, user_id)
        template = create_defaults(org, user)[0]
        db.session.commit()
        ids = (org.id, user.get_id(), template.id, template.current_version.subject)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"], sess["org_id"] = ids[1], ids[0]
    url, subject = f"/templates/{ids[2]}/preview", ids[3]

    for n in range(10):  # warm up
        client.post(url, data={"name": "t", "subject": subject, "html": _body(-n)})
    times = []
    for n in range(RUNS):
        body = _body(n)
        started = time.perf_counter()
        response = client.post(url, data={"name": "t", "subject": subject, "html": body})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and b"srcdoc" in response.data, response.data[:300]

    cold_times = []
    for n in range(max(RUNS // 5, 10)):  # every part of the template new: nothing cached
        body = _body(50_000 + n, cold=True)
        started = time.perf_counter()
        response = client.post(url, data={"name": "t", "subject": subject, "html": body})
        cold_times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200

    plain = Environment(autoescape=True)
    context = catalogue.sample_context()
    base_times = []
    for n in range(RUNS):
        body = _body(10_000 + n).replace("|datetime", "")
        started = time.perf_counter()
        plain.from_string(body).render(context)
        base_times.append((time.perf_counter() - started) * 1000)

    median, p95 = statistics.median(times), _percentile(times, 0.95)
    baseline = statistics.median(base_times)
    print(f"template_kb={len(_body(0)) / 1024:.1f} runs={RUNS}")
    print(f"baseline: plain Jinja2 compile+render of the same source = {baseline:.2f} ms")
    cold = statistics.median(cold_times)
    print(f"cold (a whole new template, nothing cached): median {cold:.1f} ms")
    print(
        f"preview_ms={median:.1f} p95_ms={p95:.1f} cold_ms={cold:.1f} "
        f"baseline_jinja_ms={baseline:.2f} ratio={median / baseline:.2f} target_ms={TARGET_MS}"
    )


if __name__ == "__main__":
    with_database(run)
