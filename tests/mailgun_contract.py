"""A local stand-in for Mailgun's HTTP API, speaking its documented contract, for provider tests.

It answers POST /v3/<domain>/messages.mime and GET /v3/domains/<domain> as Mailgun does (basic
auth `api:<key>`, multipart form with `to` and the file `message`, 401/404/400/200 JSON answers),
records every request, and can be scripted to force answers: server.script(429, headers=...),
server.script(500), server.script("timeout").
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

KEY = "key-contract-0123456789abcdef"
DOMAIN = "mg.herald.test"


@dataclass
class ReceivedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    auth_ok: bool
    authorization: str | None
    fields: dict[str, str] = field(default_factory=dict)  # last value per name
    field_list: list[tuple[str, str]] = field(default_factory=list)  # all, in order
    files: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def message(self) -> bytes | None:
        """The raw MIME bytes uploaded as the `message` file."""
        return self.files.get("message")


@dataclass
class _Scripted:
    action: int | str
    headers: dict[str, str]
    body: Any
    delay: float


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
    """Split multipart/form-data exactly (no newline or charset rewriting of file parts)."""
    holder = Message()
    holder["content-type"] = content_type
    boundary = holder.get_param("boundary")
    if holder.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError("not multipart/form-data")
    fields: list[tuple[str, str]] = []
    files: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        part = part.removeprefix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        content = content.removesuffix(b"\r\n")
        disposition = Message()
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            disposition[name.strip()] = value.strip()
        field_name = disposition.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            raise ValueError("part without a name")
        if disposition.get_param("filename", header="content-disposition") is not None:
            files[field_name] = content
        else:
            fields.append((field_name, content.decode("utf-8")))
    return fields, files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    disable_nagle_algorithm = True
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the tests read server.requests instead."""

    def do_GET(self) -> None:  # noqa: N802
        """GET /v3/domains/<domain>: the check() call."""
        self._serve(b"")

    def do_POST(self) -> None:  # noqa: N802
        """POST /v3/<domain>/messages.mime: the send call."""
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        contract = self.server.contract
        auth = self.headers.get("Authorization")
        expected = "Basic " + base64.b64encode(f"api:{contract.key}".encode()).decode()
        record = ReceivedRequest(
            method=self.command,
            path=self.path,
            auth_ok=auth == expected,
            authorization=auth,
            headers={k: v for k, v in self.headers.items()},
        )
        form_error = None
        if self.command == "POST":
            try:
                record.field_list, record.files = parse_multipart(
                    body, self.headers.get("Content-Type", "")
                )
                record.fields = dict(record.field_list)
            except (ValueError, UnicodeDecodeError) as exc:
                form_error = str(exc)
        contract._record(record)
        if contract.answer_delay:  # a remote API's round trip and work (each request its own)
            time.sleep(contract.answer_delay)

        scripted = contract._next_script()
        if scripted is not None and scripted.action == "timeout":
            contract._stopping.wait(scripted.delay)  # longer than the client's read timeout
        elif scripted is not None:
            status = int(scripted.action)
            body_out = scripted.body
            if body_out is None:
                body_out = {"message": HTTPStatus(status).phrase}
            self._answer(status, body_out, scripted.headers)
            return
        self._answer(*contract.answer(record, form_error))

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. its read timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    contract: MailgunContract

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer are expected here; stay quiet."""


class MailgunContract:
    """The scriptable fake: start(), .url, .key, .domain, .requests, script(), stop()."""

    def __init__(
        self, key: str = KEY, domain: str = DOMAIN, answer_delay: float = 0.0, keep: bool = True
    ) -> None:
        self.key = key
        self.domain = domain
        self.answer_delay = answer_delay  # seconds added to every answer
        self.keep = keep  # False: count requests, keep none (a benchmark's thousands)
        self.count = 0
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._script: deque[_Scripted] = deque()
        self._stopping = threading.Event()
        self._ids = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to hand the client (http://127.0.0.1:PORT)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MailgunContract:
        """Bind 127.0.0.1 on a free port and serve in a thread."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.contract = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake any scripted sleeper and shut the server down."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def script(
        self,
        action: int | str,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 2.0,
    ) -> None:
        """Force the answer to the next unscripted request: a status, or "timeout" (sleep)."""
        if isinstance(action, str) and action != "timeout":
            raise ValueError(f"unknown scripted action {action!r}")
        with self._lock:
            self._script.append(_Scripted(action, dict(headers or {}), body, delay))

    def _next_script(self) -> _Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _record(self, record: ReceivedRequest) -> None:
        with self._lock:
            self.count += 1
            if self.keep:
                self.requests.append(record)

    def answer(self, req: ReceivedRequest, form_error: str | None) -> tuple[int, Any]:
        """What Mailgun answers: 401 bad key, 404 unknown domain/route, 400 bad form, else 200."""
        if not req.auth_ok:
            return 401, "Forbidden"
        path = req.path.split("?", 1)[0]
        if req.method == "GET" and path.startswith("/v3/domains/"):
            name = path.removeprefix("/v3/domains/")
            if name != self.domain:
                return 404, {"message": "Domain not found"}
            return 200, {"domain": {"name": self.domain, "state": "active"}, "message": "ok"}
        parts = path.strip("/").split("/")
        if req.method != "POST" or len(parts) != 3 or parts[0] != "v3":
            return 404, {"message": "Not Found"}
        if parts[2] != "messages.mime":
            return 404, {"message": "Not Found"}
        if parts[1] != self.domain:
            return 404, {"message": f"Domain not found: {parts[1]}"}
        if form_error is not None:
            return 400, {"message": f"Invalid form: {form_error}"}
        if not req.fields.get("to"):
            return 400, {"message": "to parameter is missing"}
        if not req.message:
            return 400, {"message": "message parameter is missing"}
        with self._lock:
            self._ids += 1
            n = self._ids
        return 200, {
            "id": f"<20260101000000.{n:06d}@{self.domain}>",
            "message": "Queued. Thank you.",
        }


@pytest.fixture
def mailgun_server() -> Iterator[MailgunContract]:
    """A started contract server, stopped after the test."""
    server = MailgunContract().start()
    try:
        yield server
    finally:
        server.stop()
