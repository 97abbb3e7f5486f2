"""What the corpus-store benchmark measures with: big stores built cheaply, mutants, a process-tree sampler.

* :func:`replicate` turns the real rows of a small store into a store of a million rows (the same
  rows under distinct sha256s, written with pyarrow and committed in one commit): the anti-join
  and a night then run against a store of that size without extracting a million files.
* :func:`mutants` writes seeded mutants of real executables (a seeded 16-byte tail: a new sha256,
  the same structure) for nights of 10,000 and 100,000 new files.
* :class:`TreeSampler` follows a night run as spark-submit runs it (a subprocess) and keeps the
  peak memory (PSS, so forked workers' shared pages count once) and the CPU of each kind of
  process (every 0.25 s, each process's last sample): the driver, the Spark JVM, pyspark's Python
  workers, extract's parser workers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.reaping import become_subreaper, reap_descendants

REPO = Path(__file__).resolve().parent.parent


def replicate(tables, base: pa.Table, copies: int, copies_per_file: int, first_date: str, tag_date: str) -> dict:
    """Write ``copies`` copies of ``base`` (new sha256 each) and commit them in one commit, tagged ``tag_date``.

    Every file holds ``copies_per_file`` copies and one ingest date (one date per file, first_date
    onwards), as a night's files do.
    """
    from jobs.corpus.commit import publish_features
    from jobs.corpus.extraction import load_contract
    from jobs.corpus.schema import ROW_GROUP_ROWS, conform, features_schema, parquet_options

    schema = features_schema(load_contract().schema)
    base = conform(base.select(schema.names), schema)  # as stored: a read's fixed-size vector is a list again
    loc = tables.features.location().rstrip("/") + "/data"
    version = base.column("feature_version")[0].as_py()
    t0 = time.perf_counter()
    files: list[tuple[str, int, int]] = []
    day0 = dt.date.fromisoformat(first_date)
    for k, start in enumerate(range(0, copies, copies_per_file)):
        n = min(copies_per_file, copies - start)
        day = day0 + dt.timedelta(days=k)
        block = pa.concat_tables([base] * n)
        shas = [hashlib.sha256(f"{start + j}:{s}".encode()).hexdigest()
                for j in range(n) for s in base.column("sha256").to_pylist()]  # fmt: skip
        block = block.set_column(block.schema.get_field_index("sha256"), "sha256", pa.array(shas, pa.string()))
        block = block.set_column(block.schema.get_field_index("ingest_date"), "ingest_date",
                                 pa.array([day] * block.num_rows, pa.date32()))  # fmt: skip
        path = f"{loc}/ingest_date={day.isoformat()}/replica-{k:05d}.parquet"
        with tables.features.io.new_output(path).create(overwrite=True) as stream:
            pq.write_table(block, stream, row_group_size=ROW_GROUP_ROWS, **parquet_options(schema))
        files.append((path, block.num_rows, len(tables.features.io.new_input(path))))
    t_write = time.perf_counter() - t0
    t1 = time.perf_counter()
    pub = publish_features(
        tables, date=tag_date, version=version, run_id="bench-replica", schema=schema, properties={},
        files=files, new_keys=set(), base_snapshot_id=tables.features.metadata.current_snapshot_id,
        labels_snapshot_id=None, label_keys=pa.array([], pa.string()), complete=True,
    )  # fmt: skip
    return {"rows": sum(f[1] for f in files), "files": len(files), "bytes": sum(f[2] for f in files),
            "write_s": round(t_write, 2), "commit_s": round(time.perf_counter() - t1, 3),
            "snapshot_id": pub.record.features_snapshot_id}  # fmt: skip


def mutants(parents: list[Path], dest: Path, per_parent: int, seed: str) -> dict:
    """``per_parent`` seeded mutants of each parent (parent bytes + 16 seeded bytes) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    n = nbytes = 0
    for i, parent in enumerate(parents):
        data = parent.read_bytes()
        for k in range(per_parent):
            tail = hashlib.sha256(f"{seed}:{i}:{k}".encode()).digest()[:16]
            (dest / f"m{i:04d}-{k:04d}").write_bytes(data + tail)
            n += 1
            nbytes += len(data) + 16
    return {"files": n, "bytes": nbytes}


def corpus_files(root: Path, max_size: int | None = None) -> list[Path]:
    """The sample corpus's files (content-addressed under root), optionally only the small ones."""
    out = []
    with open(root / "manifest.jsonl", encoding="utf-8") as fh:
        for line in fh:
            sha = json.loads(line)["sha256"]
            p = root / sha[:2] / sha
            if p.is_file() and (max_size is None or p.stat().st_size <= max_size):
                out.append(p)
    return sorted(out)


def _kind(p: psutil.Process, parent: str | None) -> str:
    if parent == "adopted":  # re-parented to us when the driver exited: classify by itself
        parent = "other"
    try:
        if p.name().startswith("java"):
            return "jvm"
        cmd = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    if "extract.worker" in cmd or (parent == "python_workers" and "pyspark" not in cmd):
        return "parser_workers"
    if "pyspark" in cmd or parent == "python_workers":
        return "python_workers"
    return "other" if parent is not None else "driver"


@dataclass
class TreeSampler:
    """Peak PSS and CPU by process kind of a process tree, sampled every ``interval`` seconds."""

    pid: int
    interval: float = 0.25
    peak_mb: dict[str, float] = field(default_factory=dict)
    _cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _walk(self) -> list[tuple[psutil.Process, str]]:
        """The measured process and its descendants, and orphans of it this (subreaper) process adopted."""
        out = []
        me = psutil.Process()
        stack = [(c, None if c.pid == self.pid else "adopted") for c in me.children()]
        while stack:
            p, parent = stack.pop()
            kind = _kind(p, parent)
            out.append((p, kind))
            try:
                stack += [(c, kind) for c in p.children()]
            except psutil.Error:
                continue
        return out

    def _sample(self) -> None:
        mem: dict[str, float] = {}
        try:
            procs = self._walk()
        except psutil.Error:
            return
        for p, kind in procs:
            try:
                info = p.memory_full_info()
                t = p.cpu_times()
            except psutil.Error:
                continue
            # a process keeps the kind it was first seen with (an exiting one reads as "other")
            kind = self._cpu.get(p.pid, (kind, 0.0))[0] if kind == "other" else kind
            mem[kind] = mem.get(kind, 0.0) + getattr(info, "pss", info.rss) / 2**20
            self._cpu[p.pid] = (kind, t.user + t.system)
        for kind, mb in mem.items():
            self.peak_mb[kind] = round(max(self.peak_mb.get(kind, 0.0), mb), 1)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def cpu_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, cpu in self._cpu.values():
            out[kind] = round(out.get(kind, 0.0) + cpu, 2)
        return out


def run_measured(argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a command (a night) and measure wall, CPU of the whole tree (every descendant reaped here)
    and memory by process kind."""
    become_subreaper()
    reap_descendants(kill_late=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        sampler._sample()  # the adopted rest (the JVM, its workers) once more before they go
        reap_descendants(kill_late=True)
        sampler._stop.set()
        thread.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    by_kind = sampler.cpu_by_kind()
    # pyspark's daemon ignores SIGCHLD, so its exited workers are reaped without their CPU reaching
    # any RUSAGE_CHILDREN: the sampled per-process CPU (each process's last sample) is the better
    # figure; the reaped one is kept to show the gap.
    return {"rc": rc, "wall_s": round(wall, 2), "cpu_s": round(max(reaped, sum(by_kind.values())), 2),
            "cpu_s_reaped": round(reaped, 2), "peak_pss_mb": sampler.peak_mb, "cpu_s_by_kind": by_kind}  # fmt: skip


def data_files(root: Path) -> dict[str, tuple[int, int]]:
    """Features data files under a store: path -> (size, mtime_ns)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*.parquet")
            if "/features/data/" in str(p)}  # fmt: skip


def key_bytes(files: list[str]) -> dict[str, int]:
    """Compressed bytes of the two key columns against the files' total (what the anti-join reads)."""
    keys = total = 0
    for f in files:
        meta = pq.read_metadata(f.removeprefix("file://"))
        total += os.path.getsize(f.removeprefix("file://"))
        for rg in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                col = meta.row_group(rg).column(c)
                if col.path_in_schema in ("sha256", "feature_version"):
                    keys += col.total_compressed_size
    return {"key_column_bytes": keys, "file_bytes": total}


def first_rows(store: Path, date: str) -> pa.Table:
    """Every stored column of the rows as of ``date`` (the real rows to replicate)."""
    from jobs.corpus.catalog import StoreConfig
    from jobs.corpus.read import read_as_of

    t = read_as_of(date, cfg=StoreConfig(store=str(store)))
    keep = [c for c in t.column_names if c not in ("label", "family", "label_source", "first_seen", "label_updated_at")]
    return t.select(keep).filter(pc.is_valid(t.column("sha256")))
