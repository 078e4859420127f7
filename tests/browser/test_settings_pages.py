"""In real Chromium: the DKIM page's selector check works (its pattern compiles, no console
error), a failed connection test turns the provider's badge, and typing part of a time zone in
the settings finds it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.models import Role
from tests.conftest import closed_port


@pytest.mark.parametrize("width,height", [(390, 844), (1440, 900)])
def test_dkim_pattern_provider_badge_and_zone_search(
    page: Page, live_server, factories, shots, width, height
):
    page.set_viewport_size({"width": width, "height": height})
    org = factories.make_org("Initech Talent")
    org.sender_email, org.timezone = "jobs@initech.test", "UTC"
    db.session.commit()
    factories.make_user(org, Role.ADMIN, email="ada@example.com", password="a-long-password")
    gone = factories.make_provider_account(
        org, label="Old relay", settings={"host": "127.0.0.1", "port": closed_port()}
    )
    gone.check_ok = True  # it passed a test once; its relay has gone since
    db.session.commit()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    page.goto(live_server + "/settings/dkim")
    selector = page.locator("#selector")
    selector.fill("Bad Selector!")
    assert selector.evaluate("el => el.validity.patternMismatch")
    selector.fill("herald-2")
    assert selector.evaluate("el => el.checkValidity()")
    assert errors == []  # (an invalid pattern is a console error, and no check at all)

    page.goto(live_server + "/settings/providers")
    badge = page.locator(f"#badge-{gone.id}")
    expect(badge).to_have_text("up")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(f"#check-{gone.id}")).to_contain_text("✗")
    expect(badge).to_have_text("test failed")
    shots(page, f"40-provider-test-failed-{width}")

    page.goto(live_server + "/settings")
    zone = page.get_by_label("Default time zone")
    zone.fill("paris")
    suggested = zone.evaluate(
        "el => [...el.list.options].map(o => o.value)"
        ".filter(v => v.toLowerCase().includes(el.value.toLowerCase()))"
    )
    assert suggested == ["Europe/Paris"]
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Default time zone")).to_have_value("Europe/Paris")
    assert errors == []
