"""Progress of a running job, read on the driver from the executors' accumulators."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ProgressCallback = Callable[[dict], None]


class ProgressReporter:
    """Calls ``callback`` with a progress dict every ``interval`` seconds while something changed,
    and once more at :meth:`stop` (the final count)."""

    def __init__(self, counters, total_files: int, total_bytes: int, callback: ProgressCallback, interval: float):
        self._counters = counters
        self._total_files = total_files
        self._total_bytes = total_bytes
        self._callback = callback
        self._interval = interval
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="binfeat-progress", daemon=True)

    def start(self) -> ProgressReporter:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self, final: bool = True) -> None:
        """Stop the thread; with ``final``, report the last count once more."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if final:
            self._callback(self.snapshot())

    def snapshot(self) -> dict:
        files, nbytes = int(self._counters.files.value), int(self._counters.bytes.value)
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        return {
            "files_done": files,
            "files_total": self._total_files,
            "bytes_done": nbytes,
            "bytes_total": self._total_bytes,
            "elapsed_s": round(elapsed, 1),
            "mb_per_s": round(nbytes / elapsed / 1e6, 2),
        }

    def _loop(self) -> None:
        last = None
        while not self._stop.wait(self._interval):
            now = self.snapshot()
            if (now["files_done"], now["bytes_done"]) != last:
                last = (now["files_done"], now["bytes_done"])
                self._callback(now)


def format_progress(p: dict) -> str:
    """One progress line for people."""
    pct = 100.0 * p["bytes_done"] / p["bytes_total"] if p["bytes_total"] else 100.0
    return (
        f"progress: {p['files_done']}/{p['files_total']} files, {p['bytes_done'] / 1e6:.1f}/"
        f"{p['bytes_total'] / 1e6:.1f} MB ({pct:.0f}%), {p['mb_per_s']:.1f} MB/s, {p['elapsed_s']:.0f} s"
    )
