"""The faulty proxy itself, in front of a tiny HTTP/1.1 server on 127.0.0.1: what passes, what breaks.

Every S3 fault test trusts the proxy's counters, so they are checked here against what a plain
http.client sees: a proxy that cuts nothing (or cuts what it should not) fails these first.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.net.faulty_proxy import Fault, FaultyProxy

pytestmark = pytest.mark.network

BODY = random.Random(7).randbytes(100_000)
LISTING = b"<ListBucketResult/>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, chunked: bool = False) -> None:
        self.send_response(status)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 4096):
                part = body[i : i + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/bkt?"):
            self._send(200, LISTING)
        elif self.path.startswith("/chunked/"):
            self._send(200, BODY, chunked=True)
        else:
            self._send(200, BODY)

    def do_PUT(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        self._send(200, hashlib.sha256(self.rfile.read(n)).hexdigest().encode())


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _conn(proxy: FaultyProxy, timeout: float = 30) -> http.client.HTTPConnection:
    port = int(proxy.url.rsplit(":", 1)[1])
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def _get(proxy: FaultyProxy, path: str) -> bytes:
    conn = _conn(proxy)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def test_passes_everything_through_when_no_fault_selects(upstream):
    with FaultyProxy(upstream) as proxy:
        conn = _conn(proxy)
        for _ in range(2):  # one keep-alive connection, two object GETs
            conn.request("GET", "/bkt/obj?x-id=GetObject", headers={"Range": "bytes=0-"})
            assert conn.getresponse().read() == BODY
        conn.request("GET", "/bkt?list-type=2&prefix=")
        assert conn.getresponse().read() == LISTING
        conn.request("PUT", "/bkt/new", body=BODY, headers={"Expect": "100-continue"})
        assert conn.getresponse().read() == hashlib.sha256(BODY).hexdigest().encode()
        conn.close()
        assert _get(proxy, "/chunked/obj") == BODY  # a chunked body relayed intact
        ex = proxy.exchanges
    assert [(e.method, e.key, e.ordinal, e.range) for e in ex] == [
        ("GET", "/bkt/obj", 1, "bytes=0-"),
        ("GET", "/bkt/obj", 2, "bytes=0-"),
        ("GET", None, 0, None),
        ("PUT", None, 0, None),
        ("GET", "/chunked/obj", 1, None),
    ]
    assert [e.body_bytes for e in ex] == [len(BODY), len(BODY), len(LISTING), 64, ex[4].body_len]
    assert proxy.counts() == {"requests": 5, "object_gets": 3, "cut": 0, "stall": 0, "status": 0}


def test_cut_with_close_delivers_exactly_the_cut_point_then_eof(upstream):
    with FaultyProxy(upstream, [Fault("cut", how="close", after_bytes=12_345)]) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/bkt/obj")
        with pytest.raises(http.client.IncompleteRead) as err:
            conn.getresponse().read()
        conn.close()
        assert len(err.value.partial) == 12_345 and err.value.partial == BODY[:12_345]
        assert _get(proxy, "/bkt/obj") == BODY  # the second GET of the key is not selected
        assert _get(proxy, "/bkt?list-type=2") == LISTING  # listings never are
    assert [(e.ordinal, e.fault, e.body_bytes) for e in proxy.gets("/bkt/obj")] == [
        (1, "cut", 12_345),
        (2, None, len(BODY)),
    ]
    assert proxy.counts()["cut"] == 1


def test_cut_with_reset_resets_the_connection(upstream):
    with FaultyProxy(upstream, [Fault("cut")]) as proxy:  # half the body, then RST
        conn = _conn(proxy)
        conn.request("GET", "/bkt/obj")
        with pytest.raises(ConnectionResetError):
            conn.getresponse().read()
        conn.close()
        assert _get(proxy, "/bkt/obj") == BODY
    first, second = proxy.gets("/bkt/obj")
    assert (first.fault, first.body_bytes, first.body_len) == ("cut", len(BODY) // 2, len(BODY))
    assert second.fault is None


def test_status_fault_answers_without_forwarding_and_keeps_the_connection(upstream):
    with FaultyProxy(upstream, [Fault("status", status=503)]) as proxy:
        conn = _conn(proxy)
        conn.request("GET", "/bkt/obj")
        resp = conn.getresponse()
        assert resp.status == 503 and b"<Code>SlowDown</Code>" in resp.read()
        conn.request("GET", "/bkt/obj")  # same connection, second GET of the key: forwarded
        assert conn.getresponse().read() == BODY
        conn.close()
    assert [(e.status, e.fault) for e in proxy.gets()] == [(503, "status"), (200, None)]


def test_selection_by_ordinal_and_key_and_the_hook_before_the_cut(upstream):
    seen: list[tuple[str, int]] = []

    def hook(key: str) -> None:  # runs while the client still waits for the rest of the body
        seen.append((key, proxy.counts()["cut"]))

    fault = Fault("cut", gets={2}, keys=lambda k: k.endswith("/victim"), how="close", then=hook)
    with FaultyProxy(upstream, [fault]) as proxy:
        for path in ("/bkt/victim", "/bkt/other", "/bkt/other"):
            assert _get(proxy, path) == BODY
        with pytest.raises(http.client.IncompleteRead):
            _get(proxy, "/bkt/victim")
        assert _get(proxy, "/bkt/victim") == BODY
    assert seen == [("/bkt/victim", 1)]
    assert [e.fault for e in proxy.gets("/bkt/victim")] == [None, "cut", None]
    assert [e.fault for e in proxy.gets("/bkt/other")] == [None, None]


def test_a_stall_times_the_client_out_and_stop_ends_it(upstream):
    proxy = FaultyProxy(upstream, [Fault("stall", after_bytes=10, stall_s=300)]).start()
    try:
        conn = _conn(proxy, timeout=0.5)
        conn.request("GET", "/bkt/obj")
        resp = conn.getresponse()
        assert resp.read(10) == BODY[:10]
        with pytest.raises(socket.timeout):
            resp.read()
        conn.close()
    finally:
        proxy.stop()  # returns although the stall had 300 s to go
    assert [t for t in threading.enumerate() if t.name == "faulty-proxy"] == []
    assert proxy.counts()["stall"] == 1


def test_a_short_stall_delivers_the_whole_body(upstream):
    with FaultyProxy(upstream, [Fault("stall", stall_s=0.05)]) as proxy:
        assert _get(proxy, "/bkt/obj") == BODY
    [ex] = proxy.gets()
    assert (ex.fault, ex.body_bytes) == ("stall", len(BODY))


def test_bad_faults_are_refused_when_declared():
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")
    with pytest.raises(ValueError, match="how"):
        Fault("cut", how="later")
    with pytest.raises(ValueError, match="after_fraction"):
        Fault("cut", after_fraction=1.0)
    with pytest.raises(ValueError, match="upstream"):
        FaultyProxy("127.0.0.1:9")
