"""Real local servers for probe tests: HTTP, TCP, one that accepts and never answers, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testing.polling import Check, wait_for_condition
from testing.probes import probe_postgres


def pytest_configure(config: pytest.Config) -> None:
    # pytester, for the plugin tests. Not ``pytest_plugins = ["pytester"]``: pytest rejects that in a
    # conftest below the rootdir ("Defining 'pytest_plugins' in a non-top-level conftest"), which would
    # break ``pytest tests``. Registering here works for both ``pytest tests`` and this directory alone.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@dataclass
class HttpServer:
    """A real HTTP/1.1 server on 127.0.0.1 that counts the TCP connections it accepted."""

    port: int
    status: int = 200
    body: bytes = b"ok"
    connections: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state = HttpServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with state.lock:
                state.requests += 1
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class CountingServer(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, object]:
            conn, addr = super().get_request()
            with state.lock:
                state.connections += 1
            return conn, addr

    server = CountingServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class SilentServer:
    """Accepts TCP connections and never sends a byte (a hung service)."""

    port: int
    accepted: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def _silent_server() -> tuple[SilentServer, Callable[[], None]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.05)
    state = SilentServer(port=listener.getsockname()[1])
    stop = threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            state.accepted += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()

    return state, close


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    state, close = _silent_server()
    yield state
    close()


@pytest.fixture
def silent_servers() -> Iterator[Callable[[], SilentServer]]:
    closers: list[Callable[[], None]] = []

    def make() -> SilentServer:
        state, close = _silent_server()
        closers.append(close)
        return state

    yield make
    for close in closers:
        close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- PostgreSQL ------------------------------------------------------------------------------------

PG_BIN = Path(os.environ.get("FLOE_TEST_PG_BIN", "/usr/local/bin"))


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A real PostgreSQL (Debian's server binaries) on a free 127.0.0.1 port, run as ``nobody``."""
    missing = [b for b in ("initdb", "postgres", "pg_ctl") if not (PG_BIN / b).exists()]
    if missing:
        pytest.skip(f"no PostgreSQL server binaries: {', '.join(missing)} not in {PG_BIN}")
    as_other: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("no PostgreSQL: running as root and runuser is missing (postgres refuses root)")
        as_other = [runuser, "-u", "nobody", "--"]
    # Not under pytest's tmp dirs: those are private to root, and postgres runs as nobody.
    base = Path(tempfile.mkdtemp(prefix="floe-test-pg-"))
    base.chmod(0o777)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    sock.chmod(0o777)
    pwfile = base / "pw"
    password = "floe-test-pw"
    pwfile.write_text(password)
    pwfile.chmod(0o644)
    init = subprocess.run(
        [*as_other, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if init.returncode != 0:
        pytest.skip(f"no PostgreSQL: initdb failed: {init.stderr.strip()[-300:]}")
    port = _free_port()
    log = base / "postgres.log"
    log.touch()
    log.chmod(0o666)
    proc = subprocess.Popen(
        [*as_other, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(sock), "-c", "fsync=off"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        def up() -> Check[str]:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {log.read_text()[-300:]}")
            result = probe_postgres("127.0.0.1", port, password=password, timeout=2)
            return Check(result.ok, str(result))

        wait_for_condition(up, timeout=60, interval=0.2, description=f"test PostgreSQL on port {port}",
                           fail_if=lambda _s: f"postgres exited: {log.read_text()[-300:]}"
                           if proc.poll() is not None else None)
        yield Postgres("127.0.0.1", port, "postgres", password)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
