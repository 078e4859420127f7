"""In real Chromium: sign up, log in, send a test email, see it in the dev mailbox, invite a
teammate and accept the invite in a second browser context."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect


def test_signup_send_and_invite_walkthrough(
    page: Page, browser: Browser, live_server, devmail_sink, run_worker, shots
):
    page.goto(live_server + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Organization name").fill("Globex Talent")
    page.get_by_label("Your name").fill("Gina Owner")
    page.get_by_label("Work email").fill("gina@example.com")
    page.get_by_label("Password").fill("a-long-password")
    shots(page, "01-signup")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("Please confirm your email address")).to_be_visible()

    # log out and back in
    page.get_by_role("group").filter(has_text="Gina Owner").locator("summary").click()
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    page.get_by_label("Email").fill("gina@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("That email and password don't match an account.")).to_be_visible()
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # send a test email through the outbox and a real worker; the table updates by itself (HTMX)
    page.get_by_role("button", name="Send test email").click()
    expect(page.get_by_text("Test email queued to gina@example.com")).to_be_visible()
    row = page.locator("#messages tr", has_text="test")
    expect(row.locator(".badge")).to_have_text("queued")
    shots(page, "02-overview-queued")
    run_worker()
    expect(row.locator(".badge")).to_have_text("sent", timeout=10_000)
    shots(page, "03-overview-sent")

    # the dev mailbox shows it, HTML in a sandboxed iframe, plus text and headers
    page.get_by_role("link", name="Dev mailbox").click()
    page.get_by_role("link", name="Herald test email for Globex Talent").click()
    frame = page.frame_locator("iframe.mail-frame")
    expect(frame.get_by_text("It works, Gina Owner!")).to_be_visible()
    assert (
        page.locator("iframe.mail-frame").get_attribute("sandbox")
        == "allow-popups allow-popups-to-escape-sandbox"
    )
    shots(page, "04-devmail-html")
    page.get_by_text("Headers", exact=True).click()
    expect(page.get_by_text("Message-ID", exact=True)).to_be_visible()

    # invite a teammate
    page.get_by_role("link", name="Team").click()
    page.get_by_label("Email address").fill("tom@example.com")
    page.get_by_label("Role", exact=True).select_option("recruiter")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent.")).to_be_visible()
    expect(page.get_by_role("cell", name="tom@example.com")).to_be_visible()
    shots(page, "05-team")
    run_worker()

    page.get_by_role("link", name="Dev mailbox").click()
    page.get_by_role("link", name="Gina Owner invited you to Globex Talent on Herald").click()
    page.get_by_text("Text", exact=True).click()
    text = page.locator("pre.mail-text").inner_text()
    link = re.search(r"https?://\S+/join/\S+", text).group(0)

    # the teammate accepts in a second, separate browser context
    other = browser.new_context()
    tom = other.new_page()
    tom.goto(link)
    expect(tom.get_by_role("heading", name="Join Globex Talent on Herald")).to_be_visible()
    tom.get_by_label("Your name").fill("Tom Teammate")
    tom.get_by_label("Password").fill("toms-long-password")
    shots(tom, "06-join")
    tom.get_by_role("button", name="Join Globex Talent").click()
    expect(tom.get_by_text("You joined Globex Talent.")).to_be_visible()
    expect(tom.locator(".role-chip")).to_have_text("Recruiter")
    shots(tom, "07-teammate-overview")
    tom.goto(link)
    expect(tom.get_by_text("This invitation was already used.")).to_be_visible()
    other.close()

    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("cell", name="Tom Teammate tom@example.com")).to_be_visible()
    expect(page.get_by_text("No invitations waiting.")).to_be_visible()
