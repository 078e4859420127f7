"""The SMTP provider to a relay some milliseconds away: pipelined groups against one command at
a time.

An aiosmtpd sink (offering PIPELINING or not) behind a TCP proxy that holds every chunk for
RTT/2 in each direction, both on 127.0.0.1. The provider sends N copies of a 5 KB message the way
the workers do: each message's commands announced ahead (and, to a server that pipelines, the next
message's group sent with the body). Nothing else runs: this measures the protocol alone.
Last line: pipelined_per_s=<n> lockstep_per_s=<n> speedup=<x> rtt_ms=<n>
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
RAW = (
    b"From: jobs@acme.test\r\nTo: c@example.com\r\nSubject: Interview\r\n\r\n"
    + b"Hello, this is the invitation body.\r\n" * 140
)


class _Sink:
    def __init__(self, pipelining: bool) -> None:
        self.pipelining, self.count = pipelining, 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802, PLR0913
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

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


def _serve(pipelining: bool) -> tuple[int, _Sink]:
    """The sink and the delaying proxy in a thread; the proxy's port."""
    from aiosmtpd.smtp import SMTP

    handler = _Sink(pipelining)
    ready: list[int] = []
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sink = loop.run_until_complete(
            loop.create_server(lambda: SMTP(handler, hostname="sink"), "127.0.0.1", 0)
        )
        sink_port = sink.sockets[0].getsockname()[1]

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", sink_port)
            half = RTT_MS / 2000
            await asyncio.gather(_pipe(reader, up_writer, half), _pipe(up_reader, writer, half))

        proxy = loop.run_until_complete(asyncio.start_server(relay, "127.0.0.1", 0))
        ready.append(proxy.sockets[0].getsockname()[1])
        started.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    started.wait(10)
    return ready[0], handler


def rate(pipelining: bool) -> float:
    """Messages per second through the provider, announcing each message's commands ahead and
    naming the next one, as app.mail.sending does."""
    from app.providers import Accepted, OutgoingMessage
    from app.providers.smtp import SMTPProvider, SMTPSettings

    port, handler = _serve(pipelining)
    provider = SMTPProvider(SMTPSettings("127.0.0.1", port, timeout=30))

    def message(ref: int) -> OutgoingMessage:
        return OutgoingMessage(ref, RAW, "jobs@acme.test", f"c{ref}@example.com", f"<{ref}@a>", "k")

    (first,) = provider.send_batch([message(0)])  # connect and EHLO, not timed
    assert isinstance(first, Accepted), first
    started = time.perf_counter()
    for ref in range(1, MESSAGES + 1):
        provider.announce(ref, "jobs@acme.test", f"c{ref}@example.com")
        if ref < MESSAGES:
            provider.expect_next(ref + 1, "jobs@acme.test", f"c{ref + 1}@example.com")
        (result,) = provider.send_batch([message(ref)])
        assert isinstance(result, Accepted), result
    elapsed = time.perf_counter() - started
    provider.close()
    assert handler.count == MESSAGES + 1, handler.count
    return MESSAGES / elapsed


def main() -> None:
    pipelined, lockstep = rate(True), rate(False)
    print(f"{MESSAGES} messages of {len(RAW)} bytes, round trip {RTT_MS:g} ms (proxy on 127.0.0.1)")
    print(f"server offers PIPELINING: {pipelined:.1f}/s; one command at a time: {lockstep:.1f}/s")
    print(
        f"pipelined_per_s={pipelined:.1f} lockstep_per_s={lockstep:.1f} "
        f"speedup={pipelined / lockstep:.2f} rtt_ms={RTT_MS:g}"
    )


if __name__ == "__main__":
    main()
