"""In real Chromium: add a second provider and test its connection, break the first (its SMTP
server stops), send a campaign and see it fail over; a dead letter retried from its page; a
candidate unsubscribes from a received mail and the recruiter sees the address suppressed."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from app.extensions import db
from app.models import Role


def test_failover_dead_letters_and_unsubscribe(
    page: Page,
    browser: Browser,
    app,
    live_server,
    devmail_sink,
    second_sink,
    run_worker,
    factories,
    shots,
):
    org = factories.make_org("Initech Talent")
    org.sender_email, org.postal_address = "jobs@initech.test", "4120 Freidrich Ln, Austin"
    db.session.commit()
    factories.make_user(org, Role.ADMIN, email="ada@example.com", password="a-long-password")
    second_sink.start()
    primary = factories.make_provider_account(
        org, label="Initech relay", settings={"host": "127.0.0.1", "port": second_sink.port}
    )

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    # add a backup provider (the dev mailbox's SMTP sink) and test both connections
    page.goto(live_server + "/settings/providers")
    page.get_by_text("SMTP server", exact=True).click()
    form = page.locator("details.add-provider[open] form")
    form.get_by_label("Name", exact=True).fill("Backup relay")
    form.get_by_label("Host").fill("127.0.0.1")
    form.get_by_label("Port").fill(str(app.config["SMTP_PORT"]))
    form.get_by_label("Security").select_option("none")
    form.get_by_role("button", name="Add SMTP server").click()
    expect(page.get_by_text("Backup relay added")).to_be_visible()
    for item in page.locator("li.provider").all():
        item.get_by_role("button", name="Test connection").click()
        expect(item.locator(".check-result")).to_contain_text("Connected")
    shots(page, "30-providers")

    # the primary goes down; a campaign goes out through the backup
    second_sink.stop()
    campaign = factories.launch_campaign(org, 3, tag="autumn")
    run_worker()
    page.goto(live_server + f"/campaigns/{campaign.id}")
    expect(page.locator("#campaign-progress")).to_contain_text("Sent")
    page.goto(live_server + "/messages")
    page.locator("tr", has_text="autumn0@example.com").get_by_role("link").click()
    expect(page.locator(".timeline")).to_contain_text("failover")
    expect(page.locator(".timeline")).to_contain_text("connection refused")
    shots(page, "31-failover-timeline")

    # with the backup turned off and no retries left, a mail lands in dead letters
    org.max_retries = 0
    db.session.commit()
    page.goto(live_server + "/settings/providers")
    page.locator("li.provider", has_text="Backup relay").get_by_role(
        "button", name="Turn off"
    ).click()
    factories.make_message(org, to_email="late@example.com")
    run_worker()
    page.get_by_role("link", name="Delivery").click()
    page.get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("cell", name=re.compile("connection refused"))).to_be_visible()
    shots(page, "32-dead-letters")
    second_sink.start()  # the primary is back
    page.get_by_label("Select all emails on this page").check()  # (the one there is)
    expect(page.get_by_label("Select the email to late@example.com")).to_be_checked()
    page.get_by_role("button", name="Retry selected").click()
    expect(page.get_by_text("1 email queued again.")).to_be_visible()
    run_worker()
    page.reload()
    expect(page.get_by_text("No dead letters.")).to_be_visible()
    assert second_sink.wait_for_count(1, 10)
    assert primary.id

    # a candidate unsubscribes from a mail in the dev mailbox
    page.get_by_role("link", name="Dev mailbox").click()
    page.locator("tr", has_text="autumn0@example.com").get_by_role("link").first.click()
    page.get_by_text("Text", exact=True).click()
    text = page.locator("pre.mail-text").inner_text()
    link = re.search(r"https?://[^\s/]+/u/[A-Za-z0-9._-]+", text).group(0)
    candidate = browser.new_context().new_page()
    candidate.goto(link)
    expect(candidate.get_by_role("heading", name="Email preferences")).to_be_visible()
    candidate.get_by_label("Every email from Initech Talent").check()
    shots(candidate, "33-unsubscribe-page")
    candidate.get_by_role("button", name="Unsubscribe").click()
    expect(candidate.get_by_role("heading", name="You're unsubscribed")).to_be_visible()

    page.get_by_role("link", name="Delivery").click()
    page.get_by_role("link", name="Suppressions").click()
    expect(page.get_by_role("cell", name="autumn0@example.com", exact=True)).to_be_visible()
    expect(page.get_by_text("preferences page")).to_be_visible()
    shots(page, "34-suppressions")

    # DKIM: generate a key and copy the record to paste at the DNS host
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="DKIM").click()
    page.get_by_role("button", name="Generate a 2048-bit key").click()
    value = page.get_by_label("Value")
    expect(value).to_have_value(re.compile(r"^v=DKIM1; k=rsa; p=\S{300,}$"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy the value").click()
    expect(page.get_by_role("button", name="Copied the value")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == value.input_value()
    page.get_by_role("button", name="Copied the value").click()  # again, at once
    expect(page.get_by_role("button", name="Copy the value")).to_be_visible()  # then back
    shots(page, "35-dkim")
