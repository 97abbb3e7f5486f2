"""Helpers for the corpus-store tests: a night without Spark over synthetic rows, and readers.

``synthetic_night`` runs the store's own steps (anti-join, labels upsert, publishing commit) for
rows it writes itself into the table's data folder the way the executors do (one Parquet file per
ingest date), so the store's semantics can be tested in seconds; the Spark nights are tested in
test_corpus_update.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.corpus.catalog import StoreConfig, Tables, open_tables
from jobs.corpus.schema import conform, features_schema, parquet_options


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def contract() -> pa.Schema:
    import extract

    return extract.output_schema()


def open_store(root, namespace: str = "binfeat") -> Tables:
    return open_tables(StoreConfig(store=str(root), namespace=namespace), features_schema=features_schema(contract()))


def rows(shas: list[str], version: str, dates: list[str] | str, run_id: str = "test",
         schema: pa.Schema | None = None) -> pa.Table:  # fmt: skip
    """Feature rows with identity columns filled (size = 1000 + index), other groups null."""
    n = len(shas)
    dates = [dates] * n if isinstance(dates, str) else dates
    base = pa.table({
        "sha256": shas, "md5": [s[:32] for s in shas], "size": pa.array([1000 + i for i in range(n)], pa.int64()),
        "path": [f"/in/{s[:8]}" for s in shas], "format": ["unknown"] * n, "status": ["ok"] * n,
        "error": pa.nulls(n, pa.string()), "feature_version": [version] * n, "binfeat_version": ["0.1.0"] * n,
        "parser": ["test"] * n, "vector": pa.array([[float(i), 0.5] for i in range(n)], pa.list_(pa.float32())),
        "ingest_date": pa.array([dt.date.fromisoformat(d) for d in dates], pa.date32()), "run_id": [run_id] * n,
    })  # fmt: skip
    return conform(base, schema or features_schema(contract()))


def write_files(tables: Tables, table: pa.Table, tag: str = "") -> list[tuple[str, int, int]]:
    """One Parquet file per ingest date in the table's data folder, as the executors write them."""
    out = []
    loc = tables.features.location().rstrip("/") + "/data"
    for day in sorted(set(table.column("ingest_date").to_pylist())):
        part = table.filter(pc.equal(table.column("ingest_date"), pa.scalar(day, pa.date32())))
        path = f"{loc}/ingest_date={day.isoformat()}/{tag or 'test'}-{uuid.uuid4().hex[:8]}.parquet"
        with tables.features.io.new_output(path).create() as stream:
            pq.write_table(part, stream, **parquet_options(part.schema))
        out.append((path, part.num_rows, len(tables.features.io.new_input(path))))
    return out


@dataclass
class NightResult:
    split: object
    labels: object
    publication: object


def synthetic_night(
    tables: Tables, date: str, shas: list[str], version: str = "v1", feed: pa.Table | None = None,
    run_id: str = "test", before_commit=None, base_snapshot_id: int | str | None = "head",
    contract_schema: pa.Schema | None = None, source_rows: pa.Table | None = None, properties: dict | None = None,
) -> NightResult:  # fmt: skip
    """A night's store steps for samples ``shas`` (new ones get ingest date ``date``).

    ``contract_schema`` (default: extract's) is the contract the night writes, e.g. with a column more.
    ``source_rows`` (contract rows, e.g. extract's own) are written for the new samples instead of
    :func:`rows`' synthetic ones; ``properties`` are set on the features table with the commit.
    """
    schema = features_schema(contract_schema or contract())
    from jobs.corpus.antijoin import split_candidates
    from jobs.corpus.commit import publish_features
    from jobs.corpus.feed import labels_schema as feed_schema
    from jobs.corpus.hashing import Candidate
    from jobs.corpus.labels import apply_labels, keys_as_of
    from jobs.corpus.tags import COMPLETE_VERSION

    tables.refresh()
    base = tables.features.metadata.current_snapshot_id if base_snapshot_id == "head" else base_snapshot_id
    unique = {s: Candidate(f"/in/{s[:8]}", 1000, s, date) for s in shas}
    split = split_candidates(tables.features, base, unique, version,
                             complete_version=tables.features.metadata.properties.get(COMPLETE_VERSION))  # fmt: skip
    todo = split.to_extract
    if source_rows is not None and todo:
        new = source_rows.filter(pc.is_in(source_rows.column("sha256"), pa.array([c.sha256 for c in todo])))
        days = {c.sha256: dt.date.fromisoformat(c.ingest_date) for c in todo}
        new = new.append_column("ingest_date", pa.array([days[s] for s in new.column("sha256").to_pylist()],
                                                        pa.date32())).append_column("run_id", pa.array(
            [run_id] * new.num_rows))  # fmt: skip
        files = write_files(tables, conform(new, schema), run_id)
    else:
        files = write_files(tables, rows([c.sha256 for c in todo], version, [c.ingest_date for c in todo], run_id,
                                         schema), run_id) if todo else []  # fmt: skip
    labels = apply_labels(tables, date, feed if feed is not None else feed_schema().empty_table(), run_id=run_id)
    pub = publish_features(
        tables, date=date, version=version, run_id=run_id, schema=schema, properties=properties or {},
        files=files, new_keys={c.sha256 for c in todo}, base_snapshot_id=base, labels_snapshot_id=labels.snapshot_id,
        label_keys=keys_as_of(tables, labels.snapshot_id), complete=True, before_commit=before_commit,
    )  # fmt: skip
    return NightResult(split, labels, pub)


def feed(*entries: tuple) -> pa.Table:
    """A validated labels feed: (sha256, label[, family[, source[, first_seen]]]) tuples."""
    from jobs.corpus.feed import labels_schema as feed_schema

    cols = {c: [] for c in feed_schema().names}
    for e in entries:
        e = (*e, *([None] * (5 - len(e))))
        for c, v in zip(feed_schema().names, e, strict=True):
            cols[c].append(v)
    return pa.table(cols, schema=feed_schema())


def as_of_rows(tables: Tables, date: str, columns=("sha256", "feature_version", "ingest_date", "label")) -> dict:
    """sha256 -> row (as dicts) of the corpus as of D."""
    from jobs.corpus.read import read_as_of

    t = read_as_of(date, tables=tables, columns=list(columns))
    return {r["sha256"]: r for r in t.to_pylist()}


def concurrent_child(store: str, date: str, shas: list[str], barrier, results) -> None:
    """One of two processes committing a night at the same moment (the barrier is the rendezvous)."""
    tables = open_store(store)

    def meet(attempt: int) -> None:
        if attempt == 1:
            barrier.wait(timeout=120)

    try:
        night = synthetic_night(tables, date, shas, run_id=f"proc-{date}", before_commit=meet)
        pub = night.publication
        results.put({"date": date, "ok": True, "attempts": pub.attempts, "added": pub.added_rows,
                     "adopted": pub.adopted_rows})  # fmt: skip
    except Exception as exc:  # reported to the test, which asserts on it
        results.put({"date": date, "ok": False, "error": f"{type(exc).__name__}: {exc}"})


def run_children(procs: list, results) -> list[dict]:
    """Start the (spawned) processes, collect one result each from ``results``, check every one exited 0."""
    for p in procs:
        p.start()
    out = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out
