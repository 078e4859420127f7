"""In real Chromium: send a small campaign, open a mail in the dev mailbox (the pixel loads),
follow a tracked link (the redirect lands on its destination), post signed Mailgun `delivered`
and `complained` webhooks, and watch the dashboard's numbers, funnel and chart; then the message
timeline. Screenshots of the dashboard and a timeline."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.request

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.crypto import encrypt
from app.extensions import db
from app.mail.outbox import kick_dispatcher
from app.models import Message, Role, TemplateKind
from app.tracking import rollups

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
KEY = "key-browser-signing"


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "user_agent": BROWSER_UA}  # a person's browser, not a bot


def _webhook(base: str, org, message: Message, kind: str) -> int:
    token, ts = secrets.token_hex(25), str(int(time.time()))
    sig = hmac.new(KEY.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": ts, "token": token, "signature": sig},
        "event-data": {
            "event": kind,
            "id": secrets.token_hex(8),
            "timestamp": time.time(),
            "user-variables": {"herald-id": str(message.id)},
        },
    }
    request = urllib.request.Request(
        f"{base}/webhooks/mailgun/{org.webhook_id}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_pixel_click_webhooks_and_the_dashboard(
    page: Page, app, live_server, devmail_sink, run_worker, factories, shots, monkeypatch
):
    monkeypatch.setitem(app.config, "SCANNER_CLICK_SECONDS", 0)  # the test clicks at once
    org = factories.make_org("Umbrella Careers")
    org.mailgun_signing_key_encrypted = encrypt(KEY)
    db.session.commit()
    factories.make_user(org, Role.ADMIN, email="ada@example.com", password="a-long-password")
    template = factories.make_email_template(org, TemplateKind.INVITATION, name="Tracked")
    from app.templates_editor.services import add_version

    version = template.current_version
    add_version(
        template,
        None,
        version.subject,
        version.html + f'\n<p><a href="{live_server}/healthz">See how we work</a></p>',
        None,
    )
    db.session.commit()
    from app.campaigns import services

    user = factories.make_user(org, Role.RECRUITER)
    for n in range(3):
        factories.make_candidate(org, email=f"cand{n}@example.com", tags=["fall"])
    org.send_rate_per_minute = 1000
    campaign = services.create(
        org,
        user,
        name="Fall interviews",
        job=factories.make_job(org),
        template=template,
        audience={"tag": "fall"},
        respond_by=None,
        slot_starts_at=None,
        location=None,
    )
    services.launch(org, campaign, user, None)
    db.session.commit()
    kick_dispatcher()  # as the launch route does
    run_worker()

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    # open the first candidate's mail: the pixel loads from the HTML part
    page.get_by_role("link", name="Dev mailbox").click()
    page.locator("tr", has_text="cand0@example.com").get_by_role("link").first.click()
    frame = page.frame_locator("iframe.mail-frame")
    expect(frame.get_by_role("link", name="See how we work")).to_be_visible()
    href = frame.get_by_role("link", name="See how we work").get_attribute("href")
    assert "/t/c/" in href
    message = db.session.scalars(
        select(Message).where(Message.to_email == "cand0@example.com")
    ).one()

    pixel = frame.locator('img[src*="/t/o/"]')
    expect(pixel).to_have_js_property("complete", True)  # the browser fetched the pixel
    expect(pixel).to_have_js_property("naturalWidth", 1)
    db.session.expire_all()
    assert db.session.get(Message, message.id).human_opened_at is not None

    # follow the tracked link: it lands on its destination
    candidate = page.context.new_page()
    candidate.goto(href)
    assert candidate.url == f"{live_server}/healthz"
    expect(candidate.locator("body")).to_contain_text('"status"')
    candidate.close()

    assert _webhook(live_server, org, message, "delivered") == 200
    other = db.session.scalars(select(Message).where(Message.to_email == "cand1@example.com")).one()
    assert _webhook(live_server, org, other, "complained") == 200
    rollups.flush()  # what the periodic rollup job does every few seconds
    db.session.commit()

    page.get_by_role("link", name="Delivery").click()
    expect(page.locator("#kpi-sent")).to_have_text("3")
    expect(page.locator("#kpi-open")).to_have_text("33.3%")
    expect(page.locator("#kpi-click")).to_have_text("33.3%")
    expect(page.locator("#kpi-complaint")).to_have_text("33.3%")
    expect(page.locator("#funnel li").nth(3)).to_contain_text("1")
    expect(page.locator("#series-chart")).to_be_visible()
    page.wait_for_function("() => window.Chart && Chart.getChart('series-chart')")
    expect(page.get_by_role("link", name="Fall interviews")).to_be_visible()
    shots(page, "40-dashboard")

    page.goto(live_server + f"/messages/{message.id}")
    timeline = page.locator(".timeline")
    for step in ("sent", "delivered", "opened", "clicked", "person"):
        expect(timeline).to_contain_text(step)
    shots(page, "41-message-timeline")
    page.goto(live_server + "/messages/search?q=cand1@example.com")
    expect(page.get_by_text("complained")).to_be_visible()
