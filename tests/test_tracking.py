"""Open pixel, click redirects, machine detection, and the rollups built from them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from app import clock
from app.extensions import db
from app.mail.tracked_links import click_path, pixel_path, rewrite
from app.models import COUNTERS, Event, Message
from app.tracking import rollups

pytestmark = pytest.mark.usefixtures("ctx")
HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130 Safari"}


@pytest.fixture
def sent(factories):
    """A sent campaign message, sent a minute ago."""
    org = factories.make_org("Acme")
    factories.launch_campaign(org, 1)
    message = db.session.scalars(select(Message)).one()
    message.status, message.sent_at = "sent", clock.now().replace(microsecond=0)
    message.sent_at = clock.now() - __import__("datetime").timedelta(minutes=1)
    db.session.commit()
    return message


def _events(kind: str) -> list[Event]:
    db.session.expire_all()
    return db.session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)).all()


def test_rewrite_routes_http_links_and_adds_the_pixel(app):
    base = app.config["PUBLIC_BASE_URL"]
    html = (
        '<html><body><a href="https://jobs.example.com/role?a=1&amp;b=2">Role</a>'
        '<a href="mailto:hr@example.com">m</a><a href="tel:+331">t</a><a href="#top">a</a>'
        f'<a href="{base}/i/tok">invite</a><a href="{base}/u/tok">unsub</a></body></html>'
    )
    out = rewrite(html, 42)
    assert out.count(f'href="{base}/t/c/') == 1
    for kept in ("mailto:hr@example.com", "tel:+331", "#top", f"{base}/i/tok", f"{base}/u/tok"):
        assert f'href="{kept}"' in out
    assert re.search(rf'<img src="{re.escape(base)}/t/o/[^"]+\.gif"[^>]*></body>', out)


def test_pixel_records_a_first_human_open_and_flags_proxies(app, sent):
    client = app.test_client()
    path = pixel_path(sent.id)
    first = client.get(path, headers=HUMAN)
    assert first.status_code == 200 and first.mimetype == "image/gif"
    assert len(first.data) == 43 and "no-store" in first.headers["Cache-Control"]
    client.get(path, headers=HUMAN)
    client.get(path, headers={"User-Agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})
    client.get(path, headers={"User-Agent": "Mozilla/5.0"})  # Apple Mail Privacy Protection
    client.head(path, headers=HUMAN)
    opens = _events("opened")
    assert [(e.machine, e.machine_reason, e.first, e.first_human) for e in opens] == [
        (False, None, True, True),
        (False, None, False, False),
        (True, "google_image_proxy", False, False),
        (True, "apple_mpp", False, False),
        (True, "head_request", False, False),
    ]
    assert db.session.get(Message, sent.id).delivery == "opened"


def test_machine_opens_alone_do_not_mark_the_message_opened(app, sent):
    app.test_client().get(pixel_path(sent.id), headers={"User-Agent": "YahooMailProxy; x"})
    db.session.expire_all()
    message = db.session.get(Message, sent.id)
    assert message.opened_at is not None and message.human_opened_at is None
    assert message.delivery is None


def test_click_redirects_only_to_the_signed_destination(app, sent):
    client = app.test_client()
    path = click_path(sent.id, "https://jobs.example.com/role?x=1")
    response = client.get(path, headers=HUMAN)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://jobs.example.com/role?x=1"
    [click] = _events("clicked")
    assert click.detail["url"] == "https://jobs.example.com/role?x=1" and not click.machine
    assert db.session.get(Message, sent.id).delivery == "clicked"

    from app.mail.tracked_links import _s

    forged = "/t/c/" + _s("click").dumps([sent.id, "javascript:alert(1)"])
    for bad in (path[:-4], path[:-3] + "xyz", "/t/c/abc", forged, "/t/o/abc.gif"):
        answer = client.get(bad, headers=HUMAN)
        assert answer.status_code == 400 and "Location" not in answer.headers, bad
    assert len(_events("clicked")) == 1
    assert "isn't valid" in client.get("/t/c/abc").get_data(as_text=True)


def test_scanner_clicks_are_flagged(app, sent):
    client = app.test_client()
    a = click_path(sent.id, "https://example.com/a")
    b = click_path(sent.id, "https://example.com/b")
    client.get(a, headers=HUMAN)
    client.get(b, headers=HUMAN)  # a second link within a second: a scanner did both
    clicks = _events("clicked")
    assert [(c.machine, c.machine_reason) for c in clicks] == [(True, "link_burst")] * 2
    assert len(_events("reclassified")) == 2
    message = db.session.get(Message, sent.id)
    assert message.human_clicked_at is None and message.delivery != "clicked"

    sent.sent_at = clock.now()
    db.session.commit()
    client.get(a, headers=HUMAN)  # within seconds of sending
    assert _events("clicked")[-1].machine_reason == "click_right_after_send"


def _rollup_totals(org_id: int) -> dict:
    columns = ", ".join(f"sum({c})" for c in COUNTERS)
    row = db.session.execute(
        text(f"SELECT {columns} FROM rollups WHERE org_id = :o"), {"o": org_id}
    ).one()
    return {c: int(v or 0) for c, v in zip(COUNTERS, row, strict=True)}


def test_rollups_count_as_events_arrive_and_the_rebuild_agrees(app, sent):
    client = app.test_client()
    db.session.add(Event(org_id=sent.org_id, message_id=sent.id, type="sent"))
    db.session.commit()
    rollups.flush()
    db.session.commit()
    client.get(pixel_path(sent.id), headers=HUMAN)
    client.get(pixel_path(sent.id), headers={"User-Agent": "Mozilla/5.0"})
    client.get(click_path(sent.id, "https://example.com/a"), headers=HUMAN)
    rollups.flush()  # the first click is applied as human...
    db.session.commit()
    client.get(click_path(sent.id, "https://example.com/b"), headers=HUMAN)
    rollups.flush()  # ...then corrected when the burst shows a scanner
    db.session.commit()
    totals = _rollup_totals(sent.org_id)
    assert totals["sent"] == 1
    assert (totals["opens"], totals["opens_human"], totals["unique_opens_human"]) == (2, 1, 1)
    assert (totals["clicks"], totals["clicks_human"], totals["unique_clicks_human"]) == (2, 0, 0)
    assert totals["unique_clicks"] == 1
    rollups.rebuild([sent.org_id])
    db.session.commit()
    assert _rollup_totals(sent.org_id) == totals


def test_machine_rules_on_recorded_requests():
    """The versioned rules against recorded requests (a rules change shows up here)."""
    import json
    from pathlib import Path

    from app.tracking.rules import RULES_VERSION, classify_click, classify_open

    recorded = json.loads(
        (Path(__file__).parent / "fixtures" / "tracking_requests.json").read_text()
    )
    assert recorded["rules_version"] == RULES_VERSION
    for r in recorded["opens"]:
        assert classify_open(r["method"], r["ua"], r["ip"]) == r["expect"], r
    for r in recorded["clicks"]:
        assert classify_click(r["method"], r["ua"], r["ip"], r["after_send"]) == r["expect"], r


_SPOOLER = """
import sys, threading
from app import create_app
from app.tracking.store import HitStore

HitStore.store = lambda self, hits: threading.Event().wait()  # never stores: dies first
app = create_app()
client = app.test_client()
for path in sys.argv[1:]:
    assert client.get(path, headers={"User-Agent": "Mozilla/5.0 (X11) Chrome/130"}).status_code
print("answered", flush=True)
threading.Event().wait()
"""


def test_answered_hits_survive_kill_9_and_are_stored_once(app, sent, tmp_path):
    """Hits are answered once spooled, before they are stored: a process killed with -9 right
    after answering loses none; the next writer adopts its spool, and storing it again (a
    replay) adds nothing."""
    import os
    import signal
    import subprocess
    import sys

    from app.tracking import record

    paths = [pixel_path(sent.id)] * 3 + [click_path(sent.id, "https://example.com/job")]
    env = {**os.environ, "TRACKING_WAIT_FOR_STORE": "0", "PYTHONPATH": os.getcwd()}
    spool = record.writer(app).dir
    before = set(spool.glob("*.hits"))  # other processes of the suite may have spools here
    proc = subprocess.Popen(
        [sys.executable, "-c", _SPOOLER, *paths], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "answered"
        assert _events("opened") == [] and _events("clicked") == []  # answered, not stored
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    left = [p for p in set(spool.glob("*.hits")) - before if p != record.writer(app).path]
    assert len(left) == 1
    copy = tmp_path / "copy"
    copy.write_bytes(left[0].read_bytes())

    record.writer(app).adopt()
    assert len(_events("opened")) == 3 and len(_events("clicked")) == 1
    assert not left[0].exists()
    db.session.expire_all()
    assert db.session.get(Message, sent.id).delivery == "clicked"

    db.session.get(Message, sent.id).delivery = "opened"  # as if reclassified since
    db.session.commit()
    (spool / left[0].name).write_bytes(copy.read_bytes())  # the same spool, stored again
    record.writer(app).adopt()
    assert len(_events("opened")) == 3 and len(_events("clicked")) == 1
    db.session.expire_all()
    assert db.session.get(Message, sent.id).delivery == "opened"  # a replay changes nothing


def test_a_spool_line_that_cannot_be_stored_is_set_aside_and_the_rest_stored(app, sent):
    import json

    from app.tracking import record

    writer = record.writer(app)
    good = [1, "opened", sent.id, clock.now().isoformat(), None, {"ua": "x"}, 0]
    lines = [
        b"not json at all",
        json.dumps([99, "opened", sent.id, "2026-01-01T00:00:00+00:00", None, {}, 0]).encode(),
        json.dumps([1, "opened", sent.id, "the day after tomorrow", None, {}, 0]).encode(),
        json.dumps(good).encode(),
    ]
    (writer.dir / "12345-deadprocess.hits").write_bytes(b"\n".join(lines) + b"\n")
    writer.adopt()
    assert len(_events("opened")) == 1
    kept = (writer.dir / "12345-deadprocess.hits.bad").read_bytes().splitlines()
    assert len(kept) == 3 and b"the day after tomorrow" in kept[2]
    assert not (writer.dir / "12345-deadprocess.hits").exists()


def test_the_spool_rotates_under_steady_load_and_stored_files_are_deleted(app, sent, monkeypatch):
    from app.tracking import record, spool

    monkeypatch.setattr(spool, "ROTATE_BYTES", 600)
    writer = record.writer(app)
    first = writer.path
    client = app.test_client()
    for _ in range(12):  # ~150 bytes a line: a new file every 4 hits
        assert client.get(pixel_path(sent.id), headers=HUMAN).status_code == 200
    assert writer.drain()
    assert len(_events("opened")) == 12
    writer.step()  # two rounds: the full segments rotate out, and the stored ones go
    writer.step()
    assert not first.exists() and writer.path != first  # rotated, stored, deleted
    assert len(list(writer.dir.glob("*.hits"))) <= 2


def test_a_click_that_cannot_be_recorded_still_reaches_its_destination(app, sent, monkeypatch):
    from app.tracking.spool import Spool

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("No space left on device")

    monkeypatch.setattr(Spool, "append", broken)
    response = app.test_client().get(click_path(sent.id, "https://example.com/job"), headers=HUMAN)
    assert response.status_code == 302 and response.headers["Location"] == "https://example.com/job"
    assert _events("clicked") == []


def test_a_spooled_hit_older_than_its_message_is_not_stored(app, sent):
    """A spool left by a database since replaced (same address, ids begun again, e.g. after
    make clean-instance) names today's message ids with yesterday's times: not theirs."""
    import json
    from datetime import timedelta

    from app.tracking import record

    writer = record.writer(app)
    stale = (sent.created_at - timedelta(hours=1)).isoformat()
    fresh = clock.now().isoformat()
    lines = [
        json.dumps([1, "opened", sent.id, stale, None, {"ua": "old"}, 0]).encode(),
        json.dumps([1, "opened", sent.id, fresh, None, {"ua": "new"}, 0]).encode(),
    ]
    (writer.dir / "12346-olddatabase.hits").write_bytes(b"\n".join(lines) + b"\n")
    writer.adopt()
    assert [e.detail["ua"] for e in _events("opened")] == ["new"]
