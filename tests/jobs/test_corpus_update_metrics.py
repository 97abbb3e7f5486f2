"""StatsD metrics of a corpus-update summary, received by a real UDP socket on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from jobs.corpus.metrics import metric_name, send_summary, summary_metrics

pytestmark = pytest.mark.network

SUMMARY = {
    "run_id": "scheduled__2026-11-21T00:00:00+00:00",
    "files": {"discovered": 8, "duplicates_in_day": 1, "known": 2, "new": 5, "reextracted": 0,
              "extracted": 5, "rows": 12, "unreadable": 0},
    "bytes": {"discovered": 367643, "extracted": 216515},
    "status": {"ok": 4, "error": 1},
    "errors_by_kind": {"elf.header": 1},
    "labels": {"labelled_rows": 8},
    "duration_s": 12.5,
}  # fmt: skip


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def _receive(sock: socket.socket, expected: int) -> dict[str, str]:
    got: dict[str, str] = {}
    while len(got) < expected:
        data, _ = sock.recvfrom(65536)
        for line in data.decode().splitlines():
            name, value = line.split(":", 1)
            got[name] = value
    return got


def test_summary_metrics_are_sent(udp_listener):
    port = udp_listener.getsockname()[1]
    sent = send_summary(SUMMARY, "127.0.0.1", port, prefix="binfeat.corpus")
    got = _receive(udp_listener, sent)
    assert len(got) == sent
    assert got["binfeat.corpus.files.discovered"] == "8|g"
    assert got["binfeat.corpus.files.new"] == "5|g"
    assert got["binfeat.corpus.files.extracted"] == "5|g"
    assert got["binfeat.corpus.files.known"] == "2|g"
    assert got["binfeat.corpus.bytes.extracted"] == "216515|g"
    assert got["binfeat.corpus.status.error"] == "1|g"
    assert got["binfeat.corpus.errors.elf_header"] == "1|g"  # a dot in a kind cannot add a level
    assert got["binfeat.corpus.labels.labelled_rows"] == "8|g"
    assert float(got["binfeat.corpus.duration"].split("|")[0]) == 12500.0 and got[
        "binfeat.corpus.duration"
    ].endswith("|ms")
    assert got["binfeat.corpus.runs"] == "1|c"


def test_off_by_default(udp_listener):
    assert send_summary(SUMMARY, None) == 0
    assert send_summary(SUMMARY, "") == 0
    udp_listener.settimeout(0.3)
    with pytest.raises(TimeoutError):
        udp_listener.recvfrom(65536)


def test_names_and_values():
    gauges, timers = summary_metrics(SUMMARY)
    assert gauges["files.rows"] == 12 and timers == {"duration": 12500.0}
    assert metric_name("errors", "parse timeout: x") == "errors.parse_timeout_x"
