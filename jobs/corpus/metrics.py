"""Send a corpus-update summary as StatsD metrics, so it lands in Graphite beside Airflow's own.

Off unless a host is given. UDP, fire and forget: a metrics outage must never fail the job.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("binfeat.corpus_update")
_SAFE = re.compile(r"[^A-Za-z0-9_]+")


def metric_name(*parts: str) -> str:
    """Dots separate levels in Graphite: clean each part so a label or kind cannot add levels."""
    return ".".join(_SAFE.sub("_", p).strip("_") or "_" for p in parts)


def summary_metrics(summary: dict[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """(gauges, timers in ms) from a summary: files and bytes per stage, rows by status, errors by kind."""
    gauges: dict[str, int] = {}
    for key in ("discovered", "duplicates_in_day", "known", "new", "reextracted", "extracted", "rows"):
        if key in summary.get("files", {}):
            gauges[metric_name("files", key)] = int(summary["files"][key])
    for key, value in summary.get("bytes", {}).items():
        gauges[metric_name("bytes", key)] = int(value)
    for status, count in summary.get("status", {}).items():
        gauges[metric_name("status", status)] = int(count)
    for kind, count in summary.get("errors_by_kind", {}).items():
        gauges[metric_name("errors", kind)] = int(count)
    labels = summary.get("labels", {})
    if "labelled_rows" in labels:
        gauges["labels.labelled_rows"] = int(labels["labelled_rows"])
    timers = {"duration": float(summary.get("duration_s", 0.0)) * 1000.0}
    return gauges, timers


def send_summary(
    summary: dict[str, Any], host: str | None, port: int = 8125, prefix: str = "binfeat.corpus"
) -> int:
    """Send the summary's figures to StatsD at host:port; returns how many metrics were sent (0 when off)."""
    if not host:
        return 0
    try:
        import statsd
    except ImportError as exc:
        raise RuntimeError(
            "StatsD metrics need the 'statsd' package (pip install 'binfeat[airflow]')"
        ) from exc
    gauges, timers = summary_metrics(summary)
    try:
        client = statsd.StatsClient(host, int(port), prefix=prefix)
        with client.pipeline() as pipe:
            for name, value in gauges.items():
                pipe.gauge(name, value)
            for name, ms in timers.items():
                pipe.timing(name, ms)
            pipe.incr("runs")
    except OSError as exc:  # DNS failure, unreachable network: log, never fail the job
        log.warning("StatsD metrics not sent to %s:%s: %s", host, port, exc)
        return 0
    return len(gauges) + len(timers) + 1
