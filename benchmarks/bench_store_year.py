"""A year of nights on the embedded catalog: what it does to files, metadata, planning and commits.

Each simulated night appends ``files_per_night`` small files (one partition, as a 2-core night's
extraction tasks write them), upserts a small labels feed and publishes its date, exactly through
the store's own code (``jobs.corpus.labels``, ``jobs.corpus.commit``). One run without
maintenance, one with the nightly maintenance pass (compaction after 7 days, 14 days kept); the
maintenance's notion of "now" follows the simulated calendar (snapshot k is as old as night k).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _rows(shas: list[str], day: dt.date, schema: pa.Schema) -> pa.Table:
    from jobs.corpus.schema import conform

    n = len(shas)
    base = pa.table({
        "sha256": shas, "size": pa.array(range(n), pa.int64()), "status": ["ok"] * n,
        "feature_version": ["v1"] * n, "vector": pa.array([[0.5] * 8] * n, pa.list_(pa.float32())),
        "ingest_date": pa.array([day] * n, pa.date32()), "run_id": ["year"] * n,
    })  # fmt: skip
    return conform(base, schema)


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


def _state(tables, date: str, root: Path) -> dict[str, Any]:
    from jobs.corpus.read import plan_as_of

    tables.refresh()
    head = tables.features.metadata.current_snapshot()
    plans = []
    for _ in range(3):
        t0 = time.perf_counter()
        plan = plan_as_of(date, tables=tables)
        plans.append(time.perf_counter() - t0)
    meta = Path(tables.features.metadata_location.removeprefix("file://"))
    label_meta = Path(tables.labels.metadata_location.removeprefix("file://")).parent
    on_disk = [p for p in root.rglob("*.parquet") if "/features/data/" in str(p)]
    return {
        "head_data_files": len(plan.features_files) if plan else 0,
        "features_files_on_disk": len(on_disk),
        "features_bytes_on_disk": sum(p.stat().st_size for p in on_disk),
        "labels_head_files": sum(1 for _ in tables.labels.scan().plan_files()),
        "head_manifests": len(head.manifests(tables.features.io)),
        "snapshots": len(tables.features.metadata.snapshots),
        "metadata_json_bytes": meta.stat().st_size,
        "metadata_dir_files": sum(1 for _ in (meta.parent).iterdir()),
        "metadata_bytes": sum(p.stat().st_size for d in (meta.parent, label_meta) for p in d.iterdir()),
        "plan_as_of_s": _median(plans),
    }


def simulate(root: Path, *, nights: int = 365, files_per_night: int = 6, rows_per_file: int = 20,
             maintain: bool = False, checkpoints: tuple[int, ...] = (30, 90, 180, 365)) -> dict[str, Any]:  # fmt: skip
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.commit import publish_features
    from jobs.corpus.extraction import load_contract
    from jobs.corpus.feed import labels_schema
    from jobs.corpus.labels import apply_labels
    from jobs.corpus.maintenance import maintain as maintain_pass
    from jobs.corpus.schema import features_schema, parquet_options

    schema = features_schema(load_contract().schema)
    tables = open_tables(StoreConfig(store=str(root)), features_schema=schema)
    loc = tables.features.location().rstrip("/") + "/data"
    day0 = dt.date(2026, 1, 1)
    commit_s: list[float] = []
    labels_s: list[float] = []
    maint_s: list[float] = []
    created: list[float] = []  # wall-clock time each night committed (its snapshots' timestamps)
    out: dict[str, Any] = {"nights": nights, "files_per_night": files_per_night, "rows_per_file": rows_per_file,
                           "maintenance": maintain, "checkpoints": {}}  # fmt: skip
    for n in range(1, nights + 1):
        day = day0 + dt.timedelta(days=n - 1)
        files = []
        keys: set[str] = set()
        for f in range(files_per_night):
            shas = [hashlib.sha256(f"{n}:{f}:{i}".encode()).hexdigest() for i in range(rows_per_file)]
            keys.update(shas)
            path = f"{loc}/ingest_date={day.isoformat()}/year-{uuid.uuid4().hex[:8]}.parquet"
            table = _rows(shas, day, schema)
            with tables.features.io.new_output(path).create() as stream:
                pq.write_table(table, stream, **parquet_options(schema))
            files.append((path, table.num_rows, len(tables.features.io.new_input(path))))
        feed = pa.table({"sha256": [hashlib.sha256(f"{n}:0:{i}".encode()).hexdigest() for i in range(5)],
                         "label": ["benign"] * 5, "family": [None] * 5, "source": ["sim"] * 5,
                         "first_seen": [None] * 5}, schema=labels_schema())  # fmt: skip
        t0 = time.perf_counter()
        labels = apply_labels(tables, day.isoformat(), feed, run_id="year")
        labels_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        publish_features(
            tables, date=day.isoformat(), version="v1", run_id="year", schema=schema, properties={}, files=files,
            new_keys=keys, base_snapshot_id=tables.features.metadata.current_snapshot_id,
            # no label count here: it reads every file's sha256 column (measured in the real nights)
            labels_snapshot_id=labels.snapshot_id, label_keys=pa.array([], pa.string()), complete=True,
        )  # fmt: skip
        commit_s.append(time.perf_counter() - t0)
        created.append(time.time())
        if maintain and n > 1:
            # "now" such that the snapshots of night n-14 and older are older than 14 days
            ref = created[max(0, n - 1 - 14)]
            now = dt.datetime.fromtimestamp(ref, dt.UTC) + dt.timedelta(days=14, seconds=1)
            t0 = time.perf_counter()
            maintain_pass(tables, keep_days=14, orphan_age_hours=1e6, now=now)
            maint_s.append(time.perf_counter() - t0)
        if n in checkpoints:
            state = _state(tables, day.isoformat(), root)
            state.update(commit_s_median_last10=_median(commit_s[-10:]), labels_commit_s_median_last10=_median(
                labels_s[-10:]), maintenance_s_median_last10=_median(maint_s[-10:]))  # fmt: skip
            out["checkpoints"][n] = state
    out["commit_s_median_first30"] = _median(commit_s[:30])
    return out
