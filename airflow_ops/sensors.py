"""Sensors of the nightly DAG: the day's input has arrived; the day's snapshot is published.

:class:`SnapshotPublishedSensor` reads ``<store>/snapshots/<date>.json``, the manifest the corpus
store writes last and atomically (the layout is restated here so that a DAG file never imports the
jobs package), and puts what a consumer needs into the Asset event.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseSensorOperator, PokeReturnValue

from airflow_ops.environment import aws_environment

if TYPE_CHECKING:
    from airflow.sdk import Context

MANIFEST_FORMAT = "binfeat-corpus-snapshot/1"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_run_date(date: object) -> str:
    """The run's date as YYYY-MM-DD, or a clear error (a manual run without a logical date needs
    the ``date`` param)."""
    if not isinstance(date, str) or not _DATE.match(date):
        raise ValueError(
            f"this run has no usable date ({date!r}): trigger it with a logical date, or with the "
            "'date' param (YYYY-MM-DD)"
        )
    return date


def manifest_path(store: str, date: str) -> str:
    return os.path.join(store, "snapshots", f"{date}.json")


def published_dates(store: str) -> list[str]:
    """Dates with a published snapshot, oldest first."""
    try:
        names = os.listdir(os.path.join(store, "snapshots"))
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json") and _DATE.match(n[:-5]))


class IncomingReadySensor(BaseSensorOperator):
    """Wait until the day's input exists: a local folder or manifest file, or an ``s3://`` prefix
    holding at least one object.

    Used with ``soft_fail=True`` and ``mode="reschedule"``: a day whose input never comes is skipped
    after ``timeout`` (its update does not run and does not fail), so later days still run; re-run
    that date with the ``date`` param when its files arrive.

    :param location: the day's files (templated).
    :param date: the run's date, checked first (templated).
    :param allow_missing: done at once, input or not (templated; the update is then told so too).
    :param s3_endpoint_url: S3-compatible endpoint for an ``s3://`` location (templated).
    :param aws_conn_id: connection with S3 keys; default: boto3's own chain (templated).
    """

    template_fields: Sequence[str] = ("location", "date", "allow_missing", "s3_endpoint_url", "aws_conn_id")

    def __init__(
        self,
        *,
        location: str,
        date: str = "{{ ds }}",
        allow_missing: bool | str = False,
        s3_endpoint_url: str | None = None,
        aws_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("render_template_as_native_obj", True)  # allow_missing stays a bool
        super().__init__(**kwargs)
        self.location = location
        self.date = date
        self.allow_missing = allow_missing
        self.s3_endpoint_url = s3_endpoint_url
        self.aws_conn_id = aws_conn_id

    def poke(self, context: Context) -> bool:
        check_run_date(self.date)
        if self.allow_missing is True:
            self.log.info("allow_missing is set: not waiting for %s", self.location)
            return True
        location = str(self.location)
        found = self._s3_has_objects(location) if location.startswith("s3://") else os.path.exists(location)
        self.log.info("input for %s at %s: %s", self.date, location, "present" if found else "not yet")
        return found

    def _s3_has_objects(self, location: str) -> bool:
        import boto3

        bucket, _, prefix = location[len("s3://") :].partition("/")
        env = aws_environment(self.aws_conn_id)
        client = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            region_name=env.get("AWS_DEFAULT_REGION"),
        )
        reply = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return bool(reply.get("KeyCount"))


class SnapshotPublishedSensor(BaseSensorOperator):
    """Check that the snapshot of ``date`` is published; push a short description of it to XCom.

    With ``outlets=[CORPUS_SNAPSHOT]`` the Asset event's extra carries the snapshot's ``date``,
    ``manifest``, ``rows``, ``feature_version``, ``label_coverage``, ``run_id``, ``publish_id`` and
    ``latest`` (no published snapshot has a later date). A re-run of an older date announces that
    older snapshot again, after newer ones: a consumer reads ``date`` (and ``latest``), never the
    event's own timestamp, to know which corpus it got.

    :param store: the corpus store folder (templated).
    :param date: the snapshot date, YYYY-MM-DD (templated; default ``{{ ds }}``).
    :param min_rows: fail the check when the snapshot has fewer rows (templated).
    """

    template_fields: Sequence[str] = ("store", "date", "min_rows")

    def __init__(self, *, store: str, date: str = "{{ ds }}", min_rows: int | str = 1, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 60)
        kwargs.setdefault("render_template_as_native_obj", True)
        super().__init__(**kwargs)
        self.store = store
        self.date = date
        self.min_rows = min_rows

    def poke(self, context: Context) -> PokeReturnValue | bool:
        date = check_run_date(self.date)
        store = str(self.store)
        path = manifest_path(store, date)
        try:
            with open(path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            self.log.info("snapshot %s not published yet (%s)", date, path)
            return False
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"snapshot manifest {path} is unreadable: {exc}") from None
        if manifest.get("format") != MANIFEST_FORMAT or manifest.get("date") != date:
            raise RuntimeError(f"{path} is not a binfeat snapshot manifest for {date}")
        rows = int(manifest.get("rows", {}).get("total", 0))
        if rows < int(self.min_rows):
            raise RuntimeError(f"snapshot {date} has {rows} rows, fewer than min_rows={self.min_rows}")
        info = {
            "date": date,
            "manifest": path,
            "rows": rows,
            "feature_version": manifest.get("feature_version"),
            "label_coverage": manifest.get("labels", {}).get("coverage"),
            "run_id": manifest.get("run_id"),
            "publish_id": manifest.get("publish_id"),
            "latest": all(d <= date for d in published_dates(store)),
        }
        self.log.info("snapshot %s published: %s", date, json.dumps(info, sort_keys=True))
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = info
        return PokeReturnValue(is_done=True, xcom_value=info)
