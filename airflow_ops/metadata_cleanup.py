"""Clean Airflow's metadata database: a command for the scheduler host, not a task.

Airflow 3 isolates tasks from the metadata database (a task's environment gets
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow-db-not-allowed:///``), so ``airflow db clean`` cannot run
inside a DAG. Run this from the scheduler host's cron or a systemd timer, with the scheduler's
environment (the same ``AIRFLOW_HOME`` / ``airflow.cfg`` / ``AIRFLOW__DATABASE__*``)::

    python -m airflow_ops.metadata_cleanup --retention-days 90
    python -m airflow_ops.metadata_cleanup systemd-units > ...   # a service and a daily timer

It runs ``airflow db clean --clean-before-timestamp <now - N days> --skip-archive --yes
--error-on-cleanup-failure`` (``--skip-archive``: no archive tables growing forever) and exits with
its status; bad arguments or a task-isolated environment give one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta

ISOLATED_DB_MARK = "airflow-db-not-allowed"
EXIT_USAGE = 2


def airflow_binary() -> str:
    """The ``airflow`` next to this interpreter (the venv binfeat is in), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "airflow")
    return here if os.access(here, os.X_OK) else "airflow"


def clean_command(retention_days: int, *, now: datetime | None = None, dry_run: bool = False,
                  airflow: str | None = None) -> list[str]:  # fmt: skip
    """The ``airflow db clean`` command that keeps ``retention_days`` days of metadata."""
    if retention_days < 0:
        raise ValueError(f"retention days must be >= 0, got {retention_days}")
    before = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    cmd = [airflow or airflow_binary(), "db", "clean", "--clean-before-timestamp", before.isoformat(),
           "--skip-archive", "--yes", "--error-on-cleanup-failure"]  # fmt: skip
    return [*cmd, "--dry-run"] if dry_run else cmd


def systemd_units(retention_days: int, *, airflow_home: str, python: str | None = None) -> str:
    """A oneshot service and its daily timer, for the scheduler host (print, review, install)."""
    exec_start = shlex.join([python or sys.executable, "-m", "airflow_ops.metadata_cleanup",
                             "--retention-days", str(retention_days)])  # fmt: skip
    return f"""\
# /etc/systemd/system/binfeat-airflow-db-clean.service
[Unit]
Description=Clean the Airflow metadata database (binfeat)
After=network-online.target

[Service]
Type=oneshot
Environment=AIRFLOW_HOME={airflow_home}
# Add the scheduler's other settings here (EnvironmentFile=...) when airflow.cfg does not hold them.
ExecStart={exec_start}

# /etc/systemd/system/binfeat-airflow-db-clean.timer
[Unit]
Description=Daily clean-up of the Airflow metadata database (binfeat)

[Timer]
OnCalendar=*-*-* 03:30:00 UTC
Persistent=true

[Install]
WantedBy=timers.target
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m airflow_ops.metadata_cleanup",
        description="Clean Airflow's metadata database older than N days (run on the scheduler host).",
    )
    p.add_argument("action", nargs="?", choices=("run", "systemd-units"), default="run",
                   help="run the clean-up (default), or print a systemd service and timer for it")  # fmt: skip
    p.add_argument("--retention-days", type=int, default=90, help="metadata to keep, in days (default 90)")
    p.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    p.add_argument("--airflow", default=None, help="the airflow command (default: the venv's, else PATH's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.retention_days < 0:
        print(f"error: --retention-days must be >= 0, got {args.retention_days}", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "systemd-units":
        home = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))
        sys.stdout.write(systemd_units(args.retention_days, airflow_home=home))
        return 0
    if ISOLATED_DB_MARK in os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""):
        print("error: this environment has no metadata database (an Airflow task?): run this on the "
              "scheduler host, from cron or a systemd timer", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    cmd = clean_command(args.retention_days, dry_run=args.dry_run, airflow=args.airflow)
    print("running:", shlex.join(cmd), file=sys.stderr, flush=True)
    try:
        return subprocess.run(cmd, check=False).returncode
    except FileNotFoundError:
        print(f"error: cannot run {cmd[0]!r}: install Airflow here or pass --airflow", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
