"""Which Iceberg catalog holds the corpus, and the two tables in it.

By default an embedded pyiceberg SQL catalog on SQLite inside ``--store DIR`` (``DIR/catalog.db``,
the warehouse under ``DIR/warehouse``): no server. Any other pyiceberg catalog (REST, Glue, Hive,
SQL on PostgreSQL) is chosen by name with ``--catalog NAME`` and configured the way pyiceberg
configures it (``.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__<NAME>__...`` variables). The warehouse
may be ``s3://bucket/prefix``: credentials come from boto3's/the AWS SDK's standard chain or from
pyiceberg's ``s3.*`` properties in that configuration, never from the command line, and no
property value is ever logged (:meth:`StoreConfig.describe` names the catalog, not its settings).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import Any

EMBEDDED_CATALOG = "binfeat"
CATALOG_FILE = "catalog.db"
WAREHOUSE_DIR = "warehouse"
FEATURES = "features"
LABELS = "labels"
DEFAULT_NAMESPACE = "binfeat"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreError(RuntimeError):
    """The store is unusable or a night cannot be committed; one line why and what to do."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the corpus lives. Holds names and locations only, never credentials."""

    store: str | None = None  # folder of the embedded catalog
    catalog: str | None = None  # a pyiceberg catalog name (its configuration: pyiceberg's)
    warehouse: str | None = None  # overrides the catalog's warehouse when tables are created
    namespace: str = DEFAULT_NAMESPACE
    s3_endpoint_url: str | None = None  # an S3-compatible endpoint, when the catalog sets none

    def describe(self) -> str:
        where = f"catalog {self.catalog!r}" if self.catalog else f"embedded catalog in {self.store}"
        return f"{where}, namespace {self.namespace!r}" + (f", warehouse {self.warehouse}" if self.warehouse else "")

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.namespace, table)


def check_config(cfg: StoreConfig) -> None:
    """Cheap checks before anything starts; raises StoreError with one line saying what to do."""
    if bool(cfg.store) == bool(cfg.catalog):
        raise StoreError("give exactly one of --store DIR (the embedded catalog) or --catalog NAME (pyiceberg's)")
    if cfg.store and "://" in cfg.store:
        raise StoreError(f"--store {cfg.store!r} must be a local folder; put an S3 warehouse in --warehouse")
    if not _NAME.match(cfg.namespace or ""):
        raise StoreError(f"--namespace {cfg.namespace!r}: use letters, digits and underscores")
    if cfg.catalog and not _NAME.match(cfg.catalog):
        raise StoreError(f"--catalog {cfg.catalog!r}: a pyiceberg catalog name (letters, digits, underscores)")
    if cfg.warehouse and not (cfg.warehouse.startswith(("s3://", "file://")) or os.path.isabs(cfg.warehouse)):
        raise StoreError(f"--warehouse {cfg.warehouse!r}: use s3://bucket/prefix, file:///path or an absolute path")
    if cfg.s3_endpoint_url and not cfg.s3_endpoint_url.startswith(("http://", "https://")):
        raise StoreError(f"--s3-endpoint-url must start with http:// or https://, got {cfg.s3_endpoint_url!r}")


def _warehouse_uri(location: str) -> str:
    return location if "://" in location else "file://" + os.path.abspath(location)


def _s3_properties(cfg: StoreConfig, configured: dict[str, Any]) -> dict[str, str]:
    """S3 settings the catalog's own configuration lacks: the endpoint and a region, never keys."""
    props: dict[str, str] = {}
    if cfg.s3_endpoint_url and "s3.endpoint" not in configured:
        props["s3.endpoint"] = cfg.s3_endpoint_url
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region and "s3.region" not in configured:
        props["s3.region"] = region
    return props


def open_catalog(cfg: StoreConfig):
    """The pyiceberg catalog ``cfg`` names (created on disk for the embedded one)."""
    check_config(cfg)
    if cfg.catalog:
        from pyiceberg.catalog import load_catalog
        from pyiceberg.utils.config import Config

        # Read the configuration now (pyiceberg reads it once, at import): environment variables
        # set later by the caller (an Airflow task, a test) still count.
        configured = Config().get_catalog_config(cfg.catalog)
        if configured is None:
            raise StoreError(
                f"no pyiceberg catalog named {cfg.catalog!r}: configure it in .pyiceberg.yaml or "
                f"PYICEBERG_CATALOG__{cfg.catalog.upper()}__* variables"
            )
        props = {**configured, **_s3_properties(cfg, configured)}
        if cfg.warehouse:
            props["warehouse"] = _warehouse_uri(cfg.warehouse)
        try:
            return load_catalog(cfg.catalog, **props)
        except Exception as exc:  # pyiceberg raises many kinds; the operator needs the first line
            raise StoreError(f"cannot open catalog {cfg.catalog!r}: {_first_line(exc)}") from None
    from pyiceberg.catalog.sql import SqlCatalog

    root = os.path.abspath(cfg.store or "")
    os.makedirs(root, exist_ok=True)
    warehouse = _warehouse_uri(cfg.warehouse or os.path.join(root, WAREHOUSE_DIR))
    return SqlCatalog(
        EMBEDDED_CATALOG,
        uri=f"sqlite:///{os.path.join(root, CATALOG_FILE)}",
        warehouse=warehouse,
        **_s3_properties(cfg, {}),
    )


@dataclass
class Tables:
    """The catalog and its two tables, loaded together."""

    cfg: StoreConfig
    catalog: Any
    features: Any
    labels: Any

    def refresh(self) -> Tables:
        self.features.refresh()
        self.labels.refresh()
        return self


def open_tables(cfg: StoreConfig, *, features_schema=None) -> Tables:
    """Load the tables; with ``features_schema`` (an Arrow schema) create whatever is missing.

    Creation is safe against a concurrent creator: the loser of the race loads the winner's table.
    """
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError

    catalog = open_catalog(cfg)
    if features_schema is not None:
        with contextlib.suppress(NamespaceAlreadyExistsError):
            catalog.create_namespace(cfg.namespace)
        features = _load_or_create_features(catalog, cfg, features_schema)
        labels = _load_or_create_labels(catalog, cfg)
    else:
        try:
            features = catalog.load_table(cfg.identifier(FEATURES))
            labels = catalog.load_table(cfg.identifier(LABELS))
        except NoSuchTableError:
            raise StoreError(
                f"no corpus store in the {cfg.describe()}: run `binfeat corpus update` for a first date"
            ) from None
    if cfg.warehouse:
        wanted = _warehouse_uri(cfg.warehouse).rstrip("/")
        if not features.location().startswith(wanted + "/"):
            raise StoreError(
                f"table {cfg.namespace}.{FEATURES} lives at {features.location()}, not under --warehouse {wanted}: "
                "drop --warehouse (it only matters when the tables are created) or use another --namespace"
            )
    return Tables(cfg, catalog, features, labels)


def _load_or_create_features(catalog, cfg: StoreConfig, schema):
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    from jobs.corpus.schema import FEATURES_PROPERTIES, PARTITION_COLUMN

    ident = cfg.identifier(FEATURES)
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        # One commit creates the table with its partition spec: a concurrent night never sees it unpartitioned.
        tx = catalog.create_table_transaction(ident, schema=schema, properties=FEATURES_PROPERTIES)
        with tx.update_spec() as spec:
            spec.add_identity(PARTITION_COLUMN)
        tx.commit_transaction()
        return catalog.load_table(ident)
    except TableAlreadyExistsError:
        return catalog.load_table(ident)


def _load_or_create_labels(catalog, cfg: StoreConfig):
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    from jobs.corpus.schema import LABELS_PROPERTIES, labels_schema

    ident = cfg.identifier(LABELS)
    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        tx = catalog.create_table_transaction(ident, schema=labels_schema(), properties=LABELS_PROPERTIES)
        with tx.update_schema() as update:
            update.set_identifier_fields("sha256")  # the key, for engines that MERGE by it
        tx.commit_transaction()
        return catalog.load_table(ident)
    except TableAlreadyExistsError:
        return catalog.load_table(ident)


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
