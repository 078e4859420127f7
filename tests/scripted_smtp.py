"""A tiny SMTP server whose replies a test scripts (for answers aiosmtpd will not give: a 421
that hangs up mid-group, a 354 after a refused recipient)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Script = Callable[[int, str, dict], "str | tuple[str, str] | None"]


class ScriptedSMTP:
    """`script(connection_number, verb, state)` returns a reply line, (line, "close") to answer
    and hang up, or None for the usual answer; for verb "END" (a message's end was read), a
    tuple hangs up without answering. Delivered mails are (from, [to], body)."""

    def __init__(self, script: Script, pipelining: bool = True) -> None:
        self.script = script
        self.pipelining = pipelining
        self.delivered: list[tuple[str | None, list[str], bytes]] = []
        self.connections = 0
        self.open: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def interrupt(self, line: str | None = None) -> None:
        """Say `line` (e.g. a 421) on every open connection, if given, and hang up, whatever
        the connection was doing (in the middle of a message: nothing is delivered)."""
        for conn in list(self.open):
            try:
                if line:
                    conn.sendall(line.encode() + b"\r\n")
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn, self.connections), daemon=True).start()

    def _one(self, conn: socket.socket, number: int) -> None:  # noqa: C901, PLR0912
        self.open.append(conn)
        lines = conn.makefile("rb")
        state: dict = {"from": None, "to": []}

        def say(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        try:
            say("220 scripted")
            while line := lines.readline():
                command = line.decode().strip()
                verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb == "EHLO":
                    offer = "250-PIPELINING\r\n" if self.pipelining else ""
                    conn.sendall(f"250-scripted\r\n{offer}250 HELP\r\n".encode())
                    continue
                if verb == "QUIT":
                    say("221 bye")
                    return
                reply = self.script(number, verb, state)
                close = isinstance(reply, tuple)
                if close:
                    reply = reply[0]
                default = {"DATA": "354 go"}.get(verb, "250 OK")
                reply = reply or default
                if reply.startswith("250") and verb in ("MAIL", "RCPT"):
                    address = command.split(":", 1)[1].strip("<> ")
                    if verb == "MAIL":
                        state["from"] = address
                    else:
                        state["to"].append(address)
                if verb == "RSET":
                    state["from"], state["to"] = None, []
                say(reply)
                if close:
                    return
                if verb == "DATA" and reply.startswith("354"):
                    body = b""
                    while (chunk := lines.readline()) != b".\r\n":
                        if not chunk:
                            return  # hung up mid-body: nothing delivered
                        body += chunk
                    self.delivered.append((state["from"], list(state["to"]), body))
                    if isinstance(self.script(number, "END", state), tuple):
                        return  # hung up without answering the end of the message
                    say("250 queued")
                    state["from"], state["to"] = None, []
        except OSError:
            return
        finally:
            self.open.remove(conn)
            conn.close()
