"""A faulty HTTP/1.1 proxy for tests: forwards 127.0.0.1 traffic to one upstream, breaks chosen bodies.

Why: botocore retries a request until its response headers arrive; what goes wrong after that (a
body cut off, a stall) is the reader's to survive, and only a real connection shows it. The proxy
sits between a client and a server on 127.0.0.1 (moto's S3) and, for the object GETs a
:class:`Fault` selects, sends the headers and part of the body and then resets (RST) or closes
(FIN) the connection, stalls the body, or answers an error status without forwarding at all.

Use::

    with FaultyProxy("http://127.0.0.1:MOTO", [Fault("cut")]) as proxy:  # free port on 127.0.0.1
        client = boto3.client("s3", endpoint_url=proxy.url, ...)
        ...
    proxy.counts()      # {"requests": .., "object_gets": .., "cut": .., "stall": .., "status": ..}
    proxy.gets(key)     # the object GETs of "/bucket/key", in order, as Exchange records

``start()``/``stop()`` do the same as the ``with`` block (for fixtures); ``faults`` may be replaced
while the proxy runs. The first fault that selects a request applies.

An object GET is a path-style ``GET /bucket/key`` whose query is at most botocore's
``x-id=GetObject``; its ordinal per key (1 = that key's first GET) is what ``Fault.gets`` selects.
Listings, PUTs, HEADs and other requests pass through untouched. The proxy never logs anything: the
Authorization header it forwards stays out of every output.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

FAULT_KINDS = ("cut", "stall", "status")
_OBJECT_GET_PARAMS = {"x-id", "versionId", "partNumber"}
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """What to break, and where.

    kind: "cut" (part of the body, then the connection ends), "stall" (part of the body, then
        nothing for ``stall_s`` seconds, then the rest), "status" (answer ``status`` without
        forwarding; an S3-style XML error body).
    gets: ordinals of each key's object GETs to break (1 = the first); None breaks every one.
    keys: predicate on the key ("/bucket/key"); None selects every key.
    after_bytes / after_fraction: body bytes sent before the cut or stall (at most the body's
        length minus one, so the body is always incomplete); ``after_fraction`` of the body when
        ``after_bytes`` is None.
    how: a cut ends with "reset" (RST, the peer reads ECONNRESET) or "close" (FIN, a short body).
    then: called with the key once the partial body is out and before the cut or stall ends, e.g.
        to overwrite the object before the client can retry.
    """

    kind: str = "cut"
    gets: Collection[int] | None = (1,)
    keys: Callable[[str], bool] | None = None
    after_bytes: int | None = None
    after_fraction: float = 0.5
    how: str = "reset"
    status: int = 503
    stall_s: float = 30.0
    then: Callable[[str], object] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.how not in ("reset", "close"):
            raise ValueError(f"Fault how must be 'reset' or 'close', got {self.how!r}")
        if not 0.0 <= self.after_fraction < 1.0:
            raise ValueError(f"Fault after_fraction must be in [0, 1), got {self.after_fraction}")

    def selects(self, key: str, ordinal: int) -> bool:
        return (self.gets is None or ordinal in self.gets) and (self.keys is None or self.keys(key))

    def cut_point(self, body_len: int) -> int:
        wanted = self.after_bytes if self.after_bytes is not None else int(body_len * self.after_fraction)
        return max(0, min(wanted, body_len - 1))


@dataclass
class Exchange:
    """One request through the proxy and what the proxy did with it."""

    method: str
    target: str
    key: str | None  # "/bucket/key" for an object GET, else None
    ordinal: int  # the how-many-th object GET of that key (1-based); 0 for other requests
    range: str | None
    if_match: str | None
    status: int | None = None
    body_bytes: int = 0  # response body bytes sent to the client
    body_len: int = 0  # response body bytes the upstream sent (or the synthesized body's length)
    fault: str | None = None  # the fault kind applied, if any
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # response headers, lower-case


class FaultyProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str, faults: Iterable[Fault] = ()) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.faults = list(faults)
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._ordinals: dict[str, int] = {}
        self._stopping = threading.Event()
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._socks: set[socket.socket] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def start(self) -> FaultyProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)  # the accept loop looks at the stop flag this often
        self._acceptor = self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        """Stop accepting, break every open connection, wait for the threads."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=10)  # no new connection after this
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for s in socks:
            _shutdown(s)
        for t in threads:
            t.join(timeout=10)
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what it did --------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def gets(self, key: str | None = None) -> list[Exchange]:
        """Object GETs (of ``key`` when given), in the order they arrived."""
        return [e for e in self.exchanges if e.key is not None and (key is None or e.key == key)]

    def counts(self) -> dict[str, int]:
        ex = self.exchanges
        out = {"requests": len(ex), "object_gets": sum(e.key is not None for e in ex)}
        out.update({k: sum(e.fault == k for e in ex) for k in FAULT_KINDS})
        return out

    # --- serving ------------------------------------------------------------------------------

    def _spawn(self, target: Callable, *args: object) -> threading.Thread:
        t = threading.Thread(target=self._run, args=(target, *args), daemon=True, name="faulty-proxy")
        with self._lock:
            self._threads.add(t)
        t.start()
        return t

    def _run(self, target: Callable, *args: object) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _track(self, s: socket.socket, add: bool) -> None:
        with self._lock:
            (self._socks.add if add else self._socks.discard)(s)

    def _serve(self, client: socket.socket) -> None:
        """One client connection: requests in order, each forwarded on one upstream connection."""
        self._track(client, True)
        if self._stopping.is_set():
            self._track(client, False)
            client.close()
            return
        crfile = client.makefile("rb")
        upstream: socket.socket | None = None
        urfile = None
        try:
            while not self._stopping.is_set():
                req = _read_head(crfile)
                if req is None:
                    return
                method, target, _version = req.start.split(" ", 2)
                if req.get("expect").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # answered here, not forwarded
                body = _read_body(crfile, req, request=True)
                ex = self._record(method, target, req)
                fault = self._choose(ex)
                if fault is not None and fault.kind == "status":
                    self._answer_status(client, ex, fault)
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    self._track(upstream, True)
                    urfile = upstream.makefile("rb")
                upstream.sendall(req.encode(drop=("expect",)) + body)
                resp = _read_head(urfile) or _closed()
                ex.status = int(resp.start.split(" ", 2)[1])
                ex.headers = {name.lower(): value for name, value in resp.fields}
                no_body = method == "HEAD" or ex.status in (204, 304) or 100 <= ex.status < 200
                rbody = b"" if no_body else _read_body(urfile, resp, request=False)
                ex.body_len = len(rbody)
                client.sendall(resp.encode())
                if fault is not None and rbody and 200 <= ex.status < 300:  # error bodies pass
                    self._break_body(client, ex, fault, rbody)
                    return
                client.sendall(rbody)
                ex.body_bytes = len(rbody)
                if "close" in (req.get("connection").lower(), resp.get("connection").lower()):
                    return
                if not no_body and not resp.get("content-length") and "chunked" not in resp.get("transfer-encoding"):
                    return  # the body ran until the upstream closed
        except OSError:
            return  # a peer went away, or stop() broke the connection
        finally:
            for f in (crfile, urfile):
                if f is not None:
                    f.close()
            for s in (client, upstream):
                if s is not None:
                    self._track(s, False)
                    s.close()

    def _record(self, method: str, target: str, req: _Head) -> Exchange:
        key = _object_key(method, target)
        with self._lock:
            ordinal = 0
            if key is not None:
                ordinal = self._ordinals[key] = self._ordinals.get(key, 0) + 1
            ex = Exchange(method, target, key, ordinal, req.get("range") or None, req.get("if-match") or None)
            self._exchanges.append(ex)
        return ex

    def _choose(self, ex: Exchange) -> Fault | None:
        if ex.key is None:
            return None
        return next((f for f in list(self.faults) if f.selects(ex.key, ex.ordinal)), None)

    def _answer_status(self, client: socket.socket, ex: Exchange, fault: Fault) -> None:
        code = "SlowDown" if fault.status == 503 else "InternalError"
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>injected by FaultyProxy</Message></Error>"
        ).encode()
        head = (
            f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        client.sendall(head + body)
        ex.status, ex.body_len, ex.body_bytes, ex.fault = fault.status, len(body), len(body), "status"

    def _break_body(self, client: socket.socket, ex: Exchange, fault: Fault, body: bytes) -> None:
        n = fault.cut_point(len(body))
        client.sendall(body[:n])
        ex.body_bytes, ex.fault = n, fault.kind
        if fault.then is not None:
            fault.then(ex.key or "")
        if fault.kind == "stall":
            if self._stopping.wait(fault.stall_s):
                return
            client.sendall(body[n:])
            ex.body_bytes = len(body)
            return
        if fault.how == "reset":
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            client.shutdown(socket.SHUT_WR)


# --- HTTP/1.1 framing ------------------------------------------------------------------------------


def _closed():
    raise ConnectionAbortedError("upstream closed the connection before answering")


@dataclass
class _Head:
    """A request or status line and its header fields, as received (names keep their case)."""

    start: str
    fields: list[tuple[str, str]]

    def get(self, name: str) -> str:
        """The last value of a header (case-insensitive name), or '' when absent."""
        name = name.lower()
        return next((v for k, v in reversed(self.fields) if k.lower() == name), "")

    def encode(self, drop: tuple[str, ...] = ()) -> bytes:
        lines = [self.start, *(f"{k}: {v}" for k, v in self.fields if k.lower() not in drop), "", ""]
        return "\r\n".join(lines).encode("latin-1")


def _read_head(rfile) -> _Head | None:
    """The next message head, or None at a clean end of the connection."""
    line = rfile.readline(_MAX_HEAD)
    if not line:
        return None
    head = _Head(line.decode("latin-1").rstrip("\r\n"), [])
    total = len(line)
    while True:
        line = rfile.readline(_MAX_HEAD)
        total += len(line)
        if not line or total > _MAX_HEAD:
            raise ConnectionAbortedError("incomplete or oversized HTTP head")
        if line in (b"\r\n", b"\n"):
            return head
        name, _, value = line.decode("latin-1").partition(":")
        head.fields.append((name.strip(), value.strip()))


def _read_body(rfile, head: _Head, *, request: bool) -> bytes:
    """The raw body bytes as framed on the wire (chunk framing kept, to be forwarded unchanged).

    A request without Content-Length or chunking has no body; a response without either runs
    until the connection closes.
    """
    if "chunked" in head.get("transfer-encoding").lower():
        raw = bytearray()
        while True:
            size_line = rfile.readline(_MAX_HEAD)
            if not size_line:
                raise ConnectionAbortedError("chunked body ended early")
            raw += size_line
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = rfile.readline(_MAX_HEAD)
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return bytes(raw)
            raw += _read_exact(rfile, size + 2)
    if head.get("content-length"):
        return _read_exact(rfile, int(head.get("content-length")))
    return b"" if request else rfile.read()


def _read_exact(rfile, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise ConnectionAbortedError(f"body ended after {len(data)} of {n} bytes")
    return data


def _object_key(method: str, target: str) -> str | None:
    """"/bucket/key" when the request is a path-style GET of an object, else None."""
    if method != "GET":
        return None
    parts = urlsplit(target)
    bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
    params = parse_qs(parts.query, keep_blank_values=True)
    if not bucket or not key or set(params) - _OBJECT_GET_PARAMS:
        return None
    if params.get("x-id", ["GetObject"]) != ["GetObject"]:
        return None
    return f"/{bucket}/{key}"


def _shutdown(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
