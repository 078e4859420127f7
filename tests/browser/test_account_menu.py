"""In real Chromium: the account menu changes the password (the other browser is logged out, this
one stays) and logs out everywhere."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

OLD, NEW = "a-long-password", "another-long-password"


def _log_in(page: Page, base: str, password: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def _expect_logged_out(page: Page) -> None:
    """The page, reloaded, is the visitor's: the top bar offers to log in."""
    page.reload()
    account = page.get_by_role("navigation", name="Account")
    expect(account.get_by_role("link", name="Log in")).to_be_visible()


def _menu(page: Page) -> None:
    page.get_by_role("group").filter(has_text="Ada Admin").locator("summary").click()


def test_account_menu_ends_other_sessions(
    page: Page, browser: Browser, live_server, factories, shots
):
    factories.make_user(
        factories.make_org("Globex Talent"), email="ada@example.com", name="Ada Admin", password=OLD
    )
    laptop = browser.new_context().new_page()
    _log_in(page, live_server, OLD)
    _log_in(laptop, live_server, OLD)

    _menu(page)
    shots(page, "40-account-menu")
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Current password").fill(OLD)
    page.get_by_label("New password").fill(NEW)
    page.get_by_label("Repeat it").fill(NEW)
    shots(page, "41-change-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your other sessions were logged out.")).to_be_visible()
    _expect_logged_out(laptop)

    _log_in(laptop, live_server, NEW)
    _menu(page)
    page.get_by_role("button", name="Log out everywhere").click()
    expect(page.get_by_text("You are logged out on every device.")).to_be_visible()
    _expect_logged_out(laptop)
    laptop.context.close()
