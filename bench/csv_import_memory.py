"""Memory and time of candidate CSV imports near the 50 MB limit (target: <= ~50 MB above the
process's baseline). Each case runs in a fresh subprocess: the upload path (stream into stored
chunks, sniff, header and preview) then, if accepted, the worker's import. Memory: VmRSS after a
small warm-up import, with the peak (VmHWM) reset there through /proc/self/clear_refs (ru_maxrss
cannot be reset), against VmHWM at the end. BENCH_CASES="rows …" runs only those cases. Last line:
<case>_mb=<growth> <case>_s=<seconds>."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time

from _db import app_with_org, with_database

MB = 1024 * 1024
CASES = {
    # name: (head, repeated block, bytes of blocks, tail)
    "blank_lines": (b"email,first name\n", b"\n", 45 * MB, b""),
    "big_cell": (
        b'email,first name,notes\nada@example.com,Ada,ok\nbob@example.com,Bob,"',
        b"x",
        49 * MB,
        b'"\ncy@example.com,Cy,ok\n',
    ),
    "unclosed_quotes": (b"email,first name\n", b'a@example.com,"x\n' + b",\n" * 19, 10 * MB, b""),
    "rows": (
        b"email,first name,last name,phone,time zone,tags,source\n",
        None,  # ordinary rows, numbered
        int(os.environ.get("BENCH_ROWS_MB", "49")) * MB,
        b"",
    ),
}


class Payload(io.RawIOBase):
    """The file, made as it is read: the bench holds no more of it than the app does."""

    def __init__(self, head: bytes, block: bytes | None, size: int, tail: bytes) -> None:
        self.pending, self.block, self.left, self.tail, self.n = head, block, size, tail, 0

    def readable(self) -> bool:
        return True

    def _more(self) -> bytes:
        if self.left <= 0:
            data, self.tail = self.tail, b""
            return data
        if self.block is not None:
            data = self.block * max(1, 65536 // len(self.block))
        else:
            data = b"".join(
                b"c%d@example.com,First%d,Last%d,+44 20 7946 0000,Europe/London,backend,ref\n"
                % (n, n, n)
                for n in range(self.n, self.n + 500)
            )
            self.n += 500
        data = data[: self.left]
        self.left -= len(data)
        return data

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        if not self.pending:
            self.pending = self._more()
        data, self.pending = self.pending[: len(buffer)], self.pending[len(buffer) :]
        buffer[: len(data)] = data
        return len(data)


def _import(app, org_id: int, user_id: int, stream) -> dict:  # noqa: ANN001
    """The upload request's work, then the worker's; what the user is told."""
    from app.candidates import importer
    from app.extensions import db
    from app.models import CandidateImport

    with app.app_context():
        item = CandidateImport(
            org_id=org_id, filename="b.csv", encoding="", delimiter="", created_by_id=user_id
        )
        db.session.add(item)
        db.session.flush()
        started = time.perf_counter()
        try:
            importer.receive(item, stream)
        except importer.ImportFileError as exc:
            db.session.rollback()
            return {"answer": f"refused: {exc}", "upload_s": time.perf_counter() - started}
        item.status = "queued"
        db.session.commit()
        upload_s = time.perf_counter() - started
        for _ in importer.run(item):  # as the import job does
            db.session.commit()
        return {
            "answer": f"rows={item.total_rows} imported={item.imported} failed={item.failed}",
            "upload_s": upload_s,
            "worker_s": time.perf_counter() - started - upload_s,
        }


def _status_kb(name: str) -> int:
    """A figure of /proc/self/status, in kB (VmRSS now, VmHWM the peak since clear_refs)."""
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(name + ":")).split()[1])


def child(case: str, org_id: int, user_id: int) -> None:
    """One case in this (fresh) process; prints a JSON line."""
    from app import create_app

    app = create_app()
    _import(app, org_id, user_id, io.BytesIO(b"email\nwarm@example.com\n"))
    with open("/proc/self/clear_refs", "w") as refs:  # the peak (VmHWM) restarts from here
        refs.write("5")
    before = _status_kb("VmRSS")
    result = _import(app, org_id, user_id, io.BufferedReader(Payload(*CASES[case])))
    result["growth_mb"] = (_status_kb("VmHWM") - before) / 1024
    result["baseline_mb"] = before / 1024
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run() -> None:
    from app.extensions import db

    app, org_id, user_id = app_with_org()  # migrates the database the children share
    with app.app_context():
        db.engine.dispose()
    figures = []
    for case in os.environ.get("BENCH_CASES", " ".join(CASES)).split():
        command = [sys.executable, __file__, case, str(org_id), str(user_id)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        out = out.stdout.strip().splitlines()[-1]
        result = json.loads(out)
        seconds = result["upload_s"] + result.get("worker_s", 0.0)
        print(
            f"{case}: +{result['growth_mb']:.0f} MB over {result['baseline_mb']:.0f} MB, "
            f"upload {result['upload_s']:.1f} s, "
            f"worker {result.get('worker_s', 0):.1f} s: {result['answer'][:100]}"
        )
        figures += [f"{case}_mb={result['growth_mb']:.0f}", f"{case}_s={seconds:.1f}"]
    print(" ".join(figures) + " target_mb=50")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        with_database(run)
