"""Sensors of the nightly DAG: the day's input has arrived; the day's corpus is published.

:class:`CorpusPublishedSensor` asks the Iceberg store whether the date's tag ``corpus-D`` and its
record exist (table metadata only, no data file, no Spark; the ``jobs`` package is imported when it
looks, never when a DAG file is parsed) and puts what a consumer needs into the Asset event.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseSensorOperator, PokeReturnValue

from airflow_ops.environment import aws_environment, mask_environment_credentials, process_environment

if TYPE_CHECKING:
    from airflow.sdk import Context

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_NAMESPACE = "binfeat"


def check_run_date(date: object) -> str:
    """The run's date as YYYY-MM-DD, or a clear error (a manual run without a logical date needs
    the ``date`` param)."""
    if not isinstance(date, str) or not _DATE.match(date):
        raise ValueError(
            f"this run has no usable date ({date!r}): trigger it with a logical date, or with the "
            "'date' param (YYYY-MM-DD)"
        )
    return date


def describe_published(
    date: str,
    *,
    store: str | None = None,
    catalog: str | None = None,
    warehouse: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    s3_endpoint_url: str | None = None,
) -> dict[str, Any] | None:
    """None until ``date`` is published in the store, then what it holds (the store's own
    ``describe_date``) and ``latest``: no published date is later (a re-run of an older date is not).

    An embedded store that does not exist yet is not published (and is not created here).
    """
    from jobs.corpus.catalog import CATALOG_FILE, FEATURES, StoreConfig, open_catalog
    from jobs.corpus.tags import describe_date, published_dates

    if store and not catalog and not os.path.exists(os.path.join(store, CATALOG_FILE)):
        return None
    where = {"store": store, "catalog": catalog, "warehouse": warehouse, "namespace": namespace,
             "s3_endpoint_url": s3_endpoint_url}  # fmt: skip
    info = describe_date(date, **where)
    if info is None:
        return None
    cfg = StoreConfig(**where)
    later = [d for d in published_dates(open_catalog(cfg).load_table(cfg.identifier(FEATURES))) if d > date]
    return {**info, "latest": not later}


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


class CorpusPublishedSensor(BaseSensorOperator):
    """Check that the corpus as of ``date`` is published (its tag ``corpus-D`` and record exist);
    push what it holds to XCom and, with ``outlets=[CORPUS_FEATURES]``, into the Asset event.

    The event's extra: ``date``, ``tag``, ``table``, ``labels_table``, ``rows`` (as of the date),
    ``feature_version``, ``labelled_rows``, ``label_coverage``, ``features_snapshot_id``,
    ``labels_snapshot_id``, ``run_id`` (the run that published it), ``committed_at``, ``latest``
    (no published date is later) and ``location`` (``store``, ``catalog``, ``warehouse``,
    ``namespace``, ``s3_endpoint_url``: ``jobs.corpus.catalog.StoreConfig(**location)`` opens it).
    A re-run of an older date announces that date again, after newer ones: a consumer reads
    ``date`` (and ``latest``), never the event's own timestamp, to know which corpus it got.

    :param date: the date, YYYY-MM-DD (templated; default ``{{ ds }}``).
    :param store: folder of the embedded catalog, or None with ``catalog`` (templated).
    :param catalog: a pyiceberg catalog configured on the workers (templated).
    :param warehouse: the tables' warehouse, as given to the job (templated).
    :param namespace: the tables' namespace (templated; default binfeat).
    :param s3_endpoint_url: S3-compatible endpoint of an ``s3://`` warehouse (templated).
    :param aws_conn_id: connection with S3 keys for the warehouse; default: the worker's AWS chain
        (templated).
    :param min_rows: fail the check when fewer rows are published as of the date (templated).
    """

    template_fields: Sequence[str] = ("date", "store", "catalog", "warehouse", "namespace", "s3_endpoint_url",
                                      "aws_conn_id", "min_rows")  # fmt: skip

    def __init__(
        self,
        *,
        date: str = "{{ ds }}",
        store: str | None = None,
        catalog: str | None = None,
        warehouse: str | None = None,
        namespace: str | None = DEFAULT_NAMESPACE,
        s3_endpoint_url: str | None = None,
        aws_conn_id: str | None = None,
        min_rows: int | str = 1,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 60)
        kwargs.setdefault("render_template_as_native_obj", True)
        super().__init__(**kwargs)
        self.date = date
        self.store = store
        self.catalog = catalog
        self.warehouse = warehouse
        self.namespace = namespace
        self.s3_endpoint_url = s3_endpoint_url
        self.aws_conn_id = aws_conn_id
        self.min_rows = min_rows

    def location(self) -> dict[str, Any]:
        """Where the corpus lives, as rendered (None for what is not set)."""
        return {
            "store": self.store or None,
            "catalog": self.catalog or None,
            "warehouse": self.warehouse or None,
            "namespace": self.namespace or DEFAULT_NAMESPACE,
            "s3_endpoint_url": self.s3_endpoint_url or None,
        }

    def poke(self, context: Context) -> PokeReturnValue | bool:
        date = check_run_date(self.date)
        where = self.location()
        mask_environment_credentials()
        with process_environment(aws_environment(self.aws_conn_id)):
            info = describe_published(date, **where)
        if info is None:
            self.log.info("corpus-%s not published yet (%s)", date, where["catalog"] or where["store"])
            return False
        if int(info["rows"]) < int(self.min_rows):
            raise RuntimeError(f"corpus-{date} has {info['rows']} rows, fewer than min_rows={self.min_rows}")
        info["location"] = where
        self.log.info("corpus-%s published: %s", date, json.dumps(info, sort_keys=True))
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = info
        return PokeReturnValue(is_done=True, xcom_value=info)
