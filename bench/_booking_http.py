"""The HTTP side of bench/booking.py: browser-like clients (a keep-alive connection, a cookie
session), the race's drivers (one client per candidate, or two at once for every 10th), and the
open-loop latency phase."""

from __future__ import annotations

import collections
import http.client
import random
import re
import threading
import time
from urllib.parse import urlencode

CLIENTS, PAIR_EVERY = 32, 10
RATE, SECONDS, POOL = 50, 20, 64
FIELD = re.compile(r'name="(csrf_token|state|time_zone)" value="([^"]*)"')
SLOT = re.compile(r'name="slot_id" value="(\d+)"')


class Client:
    """One keep-alive connection and one cookie session, as a browser tab."""

    def __init__(self, port: int) -> None:
        self.port, self.cookie = port, None
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    return 0, ""
        for cookie in response.headers.get_all("Set-Cookie") or []:
            if cookie.startswith("session="):
                self.cookie = cookie.split(";", 1)[0]
        return response.status, data.decode("utf-8", "replace")


class Race:
    """The race's shared state: candidates left, whether the slots ran out, what was seen."""

    def __init__(self, tokens: list[tuple[int, str]]) -> None:
        self.left = collections.deque(enumerate(tokens))
        self.lock = threading.Lock()
        self.all_taken = threading.Event()
        self.statuses: collections.Counter = collections.Counter()
        self.errors: list[str] = []

    def next(self) -> tuple[int, str] | None:
        with self.lock:
            if self.all_taken.is_set() or not self.left:
                return None
            n, (_, token) = self.left.popleft()
            return n, token

    def seen(self, what: str, status: int, expected: tuple[int, ...]) -> bool:
        with self.lock:
            self.statuses[f"{what} {status}"] += 1
            if status not in expected:
                self.errors.append(f"{what} answered {status}")
        return status in expected

    def page(self, client: Client, token: str) -> tuple[dict, list[str]] | None:
        """A fresh session's look at the page: the form fields and the open slots."""
        client.cookie = None
        status, html = client.call("GET", f"/i/{token}")
        if not self.seen("page", status, (200,)):
            return None
        slots = SLOT.findall(html)
        if not slots:
            self.all_taken.set()
            return None
        return dict(FIELD.findall(html)), slots

    def book(self, client: Client, token: str, seen: tuple[dict, list[str]]) -> int:
        fields, slots = seen
        status, _ = client.call(
            "POST", f"/i/{token}/book", {**fields, "slot_id": random.choice(slots)}
        )
        self.seen("book", status, (303, 409))
        return status


def _drive(race: Race, client: Client, token: str) -> None:
    """One client books one candidate: another open slot after each refusal."""
    while (seen := race.page(client, token)) is not None:
        if race.book(client, token, seen) != 409:
            return


def _at_once(race: Race, token: str, posts: list[tuple[Client, tuple]]) -> list[int]:
    """Each (client, page seen) posts in its own thread, released together; the statuses."""
    go = threading.Barrier(len(posts))
    answers = [0] * len(posts)

    def post(n: int) -> None:
        go.wait()
        answers[n] = race.book(posts[n][0], token, posts[n][1])

    helpers = [threading.Thread(target=post, args=(n,)) for n in range(1, len(posts))]
    for helper in helpers:
        helper.start()
    post(0)
    for helper in helpers:
        helper.join()
    return answers


def _drive_pair(race: Race, one: Client, two: Client, token: str) -> None:
    """Two clients book the same candidate at the same moment, again while both are refused."""
    while True:
        first, second = race.page(one, token), race.page(two, token)
        if first is None or second is None:
            return
        if _at_once(race, token, [(one, first), (two, second)]) != [409, 409]:
            return


def race_phase(port: int, tokens: list[tuple[int, str]]) -> Race:
    race = Race(tokens)

    def client_loop() -> None:
        one, two = Client(port), Client(port)
        while (item := race.next()) is not None:
            n, token = item
            if n % PAIR_EVERY == 0:
                _drive_pair(race, one, two, token)
            else:
                _drive(race, one, token)

    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return race


def booking_forms(
    app, port: int, tokens: list[tuple[int, str]], slot_ids: list[int]
) -> tuple[str, list[tuple[str, dict]]]:  # noqa: ANN001
    """One CSRF session (its cookie) and, per candidate, the booking form its page would post
    for its own slot (the signed state made with the app's signer)."""
    from app.mail.tokens import sign

    opener = Client(port)
    status, html = opener.call("GET", f"/i/{tokens[0][1]}")
    assert status == 200, status
    csrf = dict(FIELD.findall(html))["csrf_token"]
    with app.app_context():
        forms = [
            (
                token,
                {
                    "csrf_token": csrf,
                    "time_zone": "Europe/Paris",
                    "slot_id": slot,
                    "state": sign("booking-form", {"i": inv, "b": 0}),
                },
            )
            for (inv, token), slot in zip(tokens, slot_ids, strict=False)
        ]
    return opener.cookie, forms


def one_at_a_time(port: int, cookie: str, forms: list[tuple[str, dict]]) -> list[float]:
    """The same POSTs from one client, each after the last answered: the service time alone."""
    client = Client(port)
    client.cookie = cookie
    times = []
    for token, form in forms:
        started = time.perf_counter()
        status, _ = client.call("POST", f"/i/{token}/book", form)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 303, status
    return sorted(times)


def open_loop(port: int, cookie: str, forms: list[tuple[str, dict]]) -> list[float]:
    """Booking POSTs at RATE per second, open loop; ms from each scheduled start."""
    due: collections.deque = collections.deque()
    ready = threading.Semaphore(0)
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def sender() -> None:
        client = Client(port)
        client.cookie = cookie
        while True:
            ready.acquire()
            item = due.popleft()
            if item is None:
                return
            scheduled, token, form = item
            status, _ = client.call("POST", f"/i/{token}/book", form)
            with lock:
                results.append((status, (time.perf_counter() - scheduled) * 1000))

    pool = [threading.Thread(target=sender) for _ in range(POOL)]
    for thread in pool:
        thread.start()
    start = time.perf_counter() + 0.5
    for n, (token, form) in enumerate(forms):
        scheduled = start + n / RATE
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        due.append((scheduled, token, form))
        ready.release()
    for _ in pool:
        due.append(None)
        ready.release()
    for thread in pool:
        thread.join()
    bad = collections.Counter(s for s, _ in results if s != 303)
    print(f"open loop: {len(results)} booking POSTs, not 303: {dict(bad) or 'none'}")
    return sorted(ms for _, ms in results)
