"""A child for tests/benchmarks/test_child_process.py: ``python -m tests.benchmarks.run_json_child MODE ... RESULT``.

ok: two progress lines, one other line, then {"mode": "ok", "args": [...]} in RESULT.
fail: three lines, exit 3, nothing written.
silent: exit 0 without writing RESULT.
hang: start a grandchild that sleeps, write its pid to the file named by the second argument, sleep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    mode, result = argv[0], Path(argv[-1])
    if mode == "ok":
        print("[t] step one", flush=True)
        print("some other line", flush=True)
        print("[t] step two", file=sys.stderr, flush=True)
        result.write_text(json.dumps({"mode": "ok", "args": argv[1:-1]}))
        return 0
    if mode == "fail":
        for i in range(3):
            print(f"failing line {i}", file=sys.stderr, flush=True)
        return 3
    if mode == "silent":
        return 0
    if mode == "hang":
        grandchild = subprocess.Popen(["sleep", "300"])
        Path(argv[1]).write_text(str(grandchild.pid))
        time.sleep(300)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
