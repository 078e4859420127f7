"""Browser fixtures: Debian's Chromium through Playwright, and the app served on a free port."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from tests.conftest import _free_port


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app on 127.0.0.1:<free port>, with mail links pointing at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    old = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    app.config["PUBLIC_BASE_URL"] = old


@pytest.fixture
def devmail_sink(app) -> Iterator[str]:
    """The real dev mailbox sink (stores .eml files the mailbox page reads); the app sends to it."""
    from app.devmail import store
    from app.devmail.sink import start_sink

    port = _free_port()
    store.clear(app.config["DEVMAIL_DIR"])
    controller = start_sink(app.config["DEVMAIL_DIR"], "127.0.0.1", port)
    old = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = port
    yield app.config["DEVMAIL_DIR"]
    app.config["SMTP_PORT"] = old
    controller.stop()
    store.clear(app.config["DEVMAIL_DIR"])


@pytest.fixture
def shots(tmp_path):
    """Save a screenshot under the test's tmp dir (and HERALD_SCREENSHOTS if set)."""
    extra = os.environ.get("HERALD_SCREENSHOTS")

    def _shot(page, name: str) -> None:
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        if extra:
            os.makedirs(extra, exist_ok=True)
            page.screenshot(path=os.path.join(extra, f"{name}.png"), full_page=True)

    return _shot
