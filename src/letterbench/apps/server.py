"""Where ``serve``'s page listens, and the server that runs it: binding a port (one clear line
where it is taken), the address said in words, loopback or not, and the server run until Ctrl-C
or (for tests and benches) in a background thread."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator

from letterbench.core.errors import LetterbenchError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port); LetterbenchError if it is taken."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LetterbenchError(f"cannot listen on --host {host}: {exc.strerror}; use 127.0.0.1") from None
    family, kind, proto, _, address = found[0]
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":  # elsewhere it lets a restarted server take its port back at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LetterbenchError(
                f"port {port} on {host} is already in use (another server, or an earlier serve still "
                "running): choose another with --port"
            ) from None
        raise LetterbenchError(
            f"cannot listen on {host} port {port}: {exc.strerror}; check --host and --port"
        ) from None
    return sock


def listening(sock: socket.socket) -> str:
    """Where ``sock`` listens, in words: ``127.0.0.1:8000``, or ``every network interface
    (0.0.0.0), port 8000`` for a wildcard address (``--host 0``, ``--host 0.0.0.0``, ``::``)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        return f"every network interface ({host}), port {port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


MAX_CONNECTIONS = 64  # uvicorn counts the one asking: 63 others at most


def _server(app):
    import uvicorn

    # at most this many connections at once (a crowd of half-sent uploads included): the next is
    # answered 503 at once instead of holding a socket
    config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=MAX_CONNECTIONS)
    return uvicorn.Server(config)


def run_server(app, host: str = "127.0.0.1", port: int = 8000, sock: socket.socket | None = None) -> None:
    """Serve ``app`` until Ctrl-C, on ``sock`` if given (see ``bind``), else on ``host``:``port``."""
    sock = sock or bind(host, port)
    try:
        _server(app).run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread while the block runs; yields its URL (tests, benches)."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise LetterbenchError("the server did not start")
        time.sleep(0.02)
    try:
        yield url(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
