"""A fault-injecting HTTP proxy on 127.0.0.1, put in front of a real server (MLflow, moto's S3, Prefect).

It forwards every request to its upstream and, when a ``Fault`` is armed, fails the requests that match
it: answers an error status (what a load balancer in front of a sick server says), drops the connection
before answering (a reset), or forwards the request and drops the connection before the answer reaches
the client (the write happened, the client cannot know). ``down()`` closes its listening socket, so a
client is refused as by a stopped server; ``up()`` opens it again on the same port.

WebSocket upgrades (Prefect's event stream) are tunnelled as raw bytes once the upstream accepts them;
an armed fault can refuse the upgrade itself.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Action = Literal["status", "drop", "lose_response"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}
ENVOY_503 = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
S3_503 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>"
)


@dataclass
class Fault:
    """Which requests fail, how, and how often.

    A request matches when its method is ``method`` (any if None), the regular expression ``path`` is
    found in its path and query, and every string of ``body`` in its body. The first ``after`` matching
    requests pass; then ``times`` of them fail (None: every one until disarmed)."""

    path: str
    method: str | None = None
    body: tuple[str, ...] = ()
    action: Action = "status"
    status: int = 503
    payload: bytes = ENVOY_503
    content_type: str = "text/plain"
    after: int = 0
    times: int | None = None
    matched: int = 0
    failed: list[str] = field(default_factory=list)

    def matches(self, method: str, target: str, body: bytes) -> bool:
        if self.method is not None and method != self.method:
            return False
        if not re.search(self.path, target):
            return False
        return all(part.encode() in body for part in self.body)

    def strikes(self, method: str, target: str, body: bytes) -> bool:
        """Whether this request fails (counting it when it matches)."""
        if not self.matches(method, target, body):
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.times is not None and len(self.failed) >= self.times:
            return False
        self.failed.append(f"{method} {target}")
        return True


class FaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``), failing what ``arm`` says."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.port = port
        self.fault: Fault | None = None
        self.seen: list[str] = []  # "METHOD /path" of every request, for messages
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()  # open client connections, kept alive between requests
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # faults ----------------------------------------------------------------------------------------
    def arm(self, fault: Fault) -> Fault:
        with self._lock:
            self.fault = fault
        return fault

    def disarm(self) -> None:
        with self._lock:
            self.fault = None

    @contextlib.contextmanager
    def armed(self, fault: Fault) -> Iterator[Fault]:
        self.arm(fault)
        try:
            yield fault
        finally:
            self.disarm()

    def strikes(self, method: str, target: str, body: bytes) -> Fault | None:
        with self._lock:
            self.seen.append(f"{method} {target}")
            if self.fault is not None and self.fault.strikes(method, target, body):
                return self.fault
        return None

    # lifecycle -------------------------------------------------------------------------------------
    def up(self) -> FaultProxy:
        proxy = self

        class Handler(_Forwarder):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop answering, as a stopped server does: the listening socket is closed (new connections are
        refused) and so is every connection a client keeps alive."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


class _Forwarder(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of the servers behind
    timeout = 120

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm holds the body back
        # until the client's delayed ACK, 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _headers_upstream(self) -> dict[str, str]:
        headers = {key: value for key, value in self.headers.items() if key.lower() not in HOP_BY_HOP}
        # Servers check the Host header (MLflow's --allowed-hosts): they are asked for by their own name.
        headers["Host"] = f"{self.owner.upstream_host}:{self.owner.upstream_port}"
        return headers

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        head = self.command == "HEAD"  # its Content-Length is the object's size, with no body
        self.send_response_only(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP and (head or key.lower() != "content-length"):
                self.send_header(key, value)
        if not head:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def _handle(self) -> None:
        upgrade = "upgrade" in self.headers.get("Connection", "").lower()
        body = b"" if upgrade else self._body()
        fault = self.owner.strikes(self.command, self.path, body)
        if fault is not None and fault.action == "status":
            self._answer(fault.status, [("Content-Type", fault.content_type)], fault.payload)
            if upgrade:
                self.close_connection = True
            return
        if fault is not None and fault.action == "drop":
            self._drop()
            return
        if upgrade:
            self._tunnel()
            return
        upstream = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=self._headers_upstream())
            response = upstream.getresponse()
            payload = response.read()
            status, headers = response.status, response.getheaders()
        except OSError:
            self._drop()  # the upstream is down: so is the proxy, to the client
            return
        finally:
            upstream.close()
        if fault is not None:  # lose_response: the server did the work, the client never hears of it
            self._drop()
            return
        self._answer(status, headers, payload)

    def _tunnel(self) -> None:
        """Hand the connection to the upstream as raw bytes (a WebSocket after its upgrade)."""
        upstream = socket.create_connection((self.owner.upstream_host, self.owner.upstream_port), timeout=10)
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = [f"{self.command} {self.path} HTTP/1.1"]
        for key, value in self.headers.items():
            head.append(f"{key}: {value}" if key.lower() != "host" else f"Host: {self._headers_upstream()['Host']}")
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        client = self.connection
        client.settimeout(None)
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 300)
                if not readable:
                    break
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
