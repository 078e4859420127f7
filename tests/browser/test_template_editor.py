"""In real Chromium: edit a default template with live preview, mobile width, a located syntax
error, save, history, restore, and a test send that lands in the dev mailbox."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from app.models import Role


def test_template_editor_walkthrough(
    page: Page, app, live_server, devmail_sink, run_worker, factories, shots
):
    org = factories.make_org("Globex Talent")
    from app.extensions import db
    from app.templates_editor.services import create_defaults

    create_defaults(org, None)
    db.session.commit()
    factories.make_user(
        org, Role.ADMIN, email="ada@example.com", name="Ada Admin", password="a-long-password"
    )
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="Interview invitation").click()
    frame = page.frame_locator("iframe.preview-frame")
    expect(frame.get_by_role("heading", name="Hi Ada,")).to_be_visible()
    shots(page, "10-editor")

    body = page.get_by_label("HTML body")
    body.press("Control+End")
    body.type("\n<p>Bring your portfolio, {{ candidate.first_name }}!</p>")
    expect(frame.get_by_text("Bring your portfolio, Ada!")).to_be_visible()

    page.get_by_role("button", name="Mobile").click()
    expect(page.locator("iframe.preview-frame")).to_have_css("width", "375px")
    shots(page, "11-editor-mobile")
    page.get_by_role("button", name="Desktop").click()

    body.press("Control+End")
    body.type("\n<p>{{ job.title </p>")
    problem = page.locator("#preview-error")
    expect(problem).to_contain_text("Line")
    expect(problem).to_contain_text("column")
    expect(frame.get_by_text("Bring your portfolio, Ada!")).to_be_visible()  # last good preview
    expect(problem.get_by_text("The last preview that worked is kept below.")).to_be_visible()
    expect(problem.get_by_text("The preview shows once it can be rendered.")).to_be_hidden()
    shots(page, "12-editor-error")
    page.get_by_role("button", name="Save version 2").click()
    expect(page.locator(".error").first).to_contain_text("Syntax error")
    # the page came back with the refused edit: no preview below to speak of
    expect(problem.get_by_text("The preview shows once it can be rendered.")).to_be_visible()
    expect(problem.get_by_text("The last preview that worked is kept below.")).to_be_hidden()
    assert "{{ job.title </p>" in page.get_by_label("HTML body").input_value()  # edit kept

    body = page.get_by_label("HTML body")
    body.fill(body.input_value().replace("{{ job.title </p>", "{{ job.title }}</p>"))
    expect(problem).to_be_empty()
    page.get_by_role("button", name="Save version 2").click()
    expect(page.get_by_text("Saved as version 2.")).to_be_visible()

    page.get_by_role("link", name="History").click()
    expect(page.locator(".diff-add").first).to_contain_text("Bring your portfolio")
    shots(page, "13-history")
    page.get_by_role("row", name="v1").get_by_role("button", name="Restore").click()
    expect(page.get_by_text("Version 1 restored as version 3.")).to_be_visible()
    assert "Bring your portfolio" not in page.get_by_label("HTML body").input_value()

    page.get_by_role("button", name="Send test to me").click()
    expect(page.get_by_text("Test of version 3 sent to ada@example.com.")).to_be_visible()
    run_worker()
    page.get_by_role("link", name="Dev mailbox").click()
    page.get_by_role(
        "link", name="Interview invitation: Senior Data Engineer at Globex Talent"
    ).click()
    expect(page.frame_locator("iframe.mail-frame").get_by_text("Accept or decline")).to_be_visible()
    shots(page, "14-test-in-devmail")

    # branding: the invitation in the preview changes as the footer is typed, before saving
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Branding").click()
    branded = page.frame_locator("iframe.branding-frame")
    expect(branded.get_by_role("heading", name="Hi Ada,")).to_be_visible()
    page.get_by_label("Footer text").fill("Globex Talent, where data people grow")
    expect(branded.get_by_text("Globex Talent, where data people grow")).to_be_visible()
    shots(page, "15-branding-preview")
