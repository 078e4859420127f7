"""The SMTP provider to a relay some milliseconds away: one connection against several at once.

An aiosmtpd sink behind a TCP proxy that holds every chunk for RTT/2 in each direction, both on
127.0.0.1. The provider (lockstep smtplib: MAIL, RCPT, DATA, the message, each answered before
the next) sends N copies of a 5 KB message on one connection, then on SEND_CONCURRENCY
connections at once (one provider per thread, as a worker's senders do). Nothing else runs: this
measures the protocol alone. proxy_main() is also the latency proxy of bench/send_throughput.py.
Last line: lockstep_per_s=<n> concurrent_per_s=<n> connections=<n> rtt_ms=<n>
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RTT_MS = float(os.environ.get("BENCH_RTT_MS", "20"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "100"))
CONNECTIONS = int(os.environ.get("SEND_CONCURRENCY", "16"))
RAW = (
    b"From: jobs@acme.test\r\nTo: c@example.com\r\nSubject: Interview\r\n\r\n"
    + b"Hello, this is the invitation body.\r\n" * 140
)


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.count += 1
        return "250 OK"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward each chunk `delay` seconds after it arrived, in order (a link's latency)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def later() -> None:
        while (item := await queue.get()) is not None:
            due, chunk = item
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(later())
    while chunk := await reader.read(65536):
        queue.put_nowait((time.monotonic() + delay, chunk))
    queue.put_nowait(None)
    await sender


async def _proxy(target_port: int, rtt_ms: float) -> asyncio.AbstractServer:
    """A TCP proxy on a free 127.0.0.1 port to target_port, RTT/2 each way."""
    half = rtt_ms / 2000

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_pipe(reader, up_writer, half), _pipe(up_reader, writer, half))

    return await asyncio.start_server(relay, "127.0.0.1", 0)


def proxy_main(target_port: int, rtt_ms: float, port_out) -> None:  # noqa: ANN001
    """The latency proxy as a process of its own: sends its port, serves until terminated."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(_proxy(target_port, rtt_ms))
    port_out.send(server.sockets[0].getsockname()[1])
    port_out.close()
    loop.run_forever()


def _serve() -> tuple[int, _Sink]:
    """The sink and the delaying proxy in a thread; the proxy's port."""
    from aiosmtpd.smtp import SMTP

    handler = _Sink()
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sink = loop.run_until_complete(
            loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", 0)
        )
        proxy = loop.run_until_complete(_proxy(sink.sockets[0].getsockname()[1], RTT_MS))
        ready.append(proxy.sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)
    return ready[0], handler


def rate(port: int, connections: int) -> float:
    """Messages per second through `connections` providers sending at once."""
    from app.providers import Accepted, OutgoingMessage
    from app.providers.smtp import SMTPProvider, SMTPSettings

    def message(ref: int) -> OutgoingMessage:
        return OutgoingMessage(ref, RAW, "jobs@acme.test", f"c{ref}@example.com", f"<{ref}@a>", "k")

    providers = [
        SMTPProvider(SMTPSettings("127.0.0.1", port, timeout=30)) for _ in range(connections)
    ]
    for provider in providers:  # connect and EHLO, not timed
        assert isinstance(provider.send(message(0)), Accepted)
    each = MESSAGES // connections

    def send(provider: SMTPProvider) -> None:
        for ref in range(1, each + 1):
            assert isinstance(provider.send(message(ref)), Accepted)

    threads = [threading.Thread(target=send, args=(p,)) for p in providers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for provider in providers:
        provider.close()
    return each * connections / elapsed


def main() -> None:
    port, handler = _serve()
    lockstep, concurrent = rate(port, 1), rate(port, CONNECTIONS)
    print(f"{MESSAGES} messages of {len(RAW)} bytes, round trip {RTT_MS:g} ms (proxy on 127.0.0.1)")
    print(f"one connection: {lockstep:.1f}/s; {CONNECTIONS} at once: {concurrent:.1f}/s")
    print(
        f"lockstep_per_s={lockstep:.1f} concurrent_per_s={concurrent:.1f} "
        f"connections={CONNECTIONS} rtt_ms={RTT_MS:g}"
    )


if __name__ == "__main__":
    main()
