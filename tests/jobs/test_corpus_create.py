"""Creating a new store is create-or-load: two first nights at once both end with the same tables.

The race is forced, not hoped for: both processes meet at a rendezvous right before each create
step (tests/jobs/create_barrier.py), so both attempt each creation and one of them loses for
certain. The two ways a loser learns it (the catalog refuses its insert, or the table appeared
after its transaction began) are also forced one at a time in one process.
"""

from __future__ import annotations

import multiprocessing as mp

import pytest

from jobs.corpus.catalog import LABELS, StoreConfig, create_or_load, ensure_namespace, open_catalog
from tests.jobs.corpus_support import open_store, run_children


def test_two_first_opens_at_once_create_each_table_once_and_both_load_it(tmp_path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    from tests.jobs.create_barrier import open_after_barrier

    procs = [ctx.Process(target=open_after_barrier, args=(str(tmp_path / "store"), str(barrier), 2, results))
             for _ in range(2)]
    out = run_children(procs, results)
    assert all(r["ok"] for r in out), out
    assert out[0]["features"] == out[1]["features"] and out[0]["labels"] == out[1]["labels"]
    assert out[0]["spec"] == ["ingest_date"] and out[0]["key"] == ["sha256"]
    # every step was reached by both processes (the rendezvous files), so each creation was raced
    steps = sorted({p.name.rsplit(".", 1)[0] for p in barrier.iterdir()})
    assert steps == ["catalog", "namespace-binfeat", "table-binfeat-features", "table-binfeat-labels"]
    assert all(len(list(barrier.glob(f"{s}.*"))) == 2 for s in steps)
    tables = open_store(tmp_path / "store")
    assert str(tables.features.metadata.table_uuid) == out[0]["features"]


def test_a_table_created_after_the_loser_began_its_transaction_is_loaded(tmp_path):
    """The loser's commit meets its AssertCreate requirement failing (CommitFailedException)."""
    cfg = StoreConfig(store=str(tmp_path / "store"))
    winner, loser = open_catalog(cfg), open_catalog(cfg)
    ensure_namespace(winner, cfg.namespace)
    begin = loser.create_table_transaction

    def begin_then_lose(ident, *args, **kwargs):
        tx = begin(ident, *args, **kwargs)
        open_store(tmp_path / "store")  # the other process creates both tables now
        return tx

    loser.create_table_transaction = begin_then_lose
    from jobs.corpus.catalog import create_labels

    got = create_or_load(loser, cfg.identifier(LABELS), lambda: create_labels(loser, cfg))
    assert got.metadata.table_uuid == winner.load_table(cfg.identifier(LABELS)).metadata.table_uuid


def test_a_namespace_created_by_another_process_is_used(tmp_path):
    cfg = StoreConfig(store=str(tmp_path / "store"))
    winner, loser = open_catalog(cfg), open_catalog(cfg)
    create = loser.create_namespace
    calls = []

    def lose(ns, *args, **kwargs):
        winner.create_namespace(ns)  # between the loser's check and its create
        calls.append(ns)
        return create(ns, *args, **kwargs)  # raises: it exists now

    loser.create_namespace = lose
    ensure_namespace(loser, cfg.namespace)
    assert calls == [cfg.namespace] and loser.namespace_exists(cfg.namespace)


def test_a_create_that_fails_for_another_reason_still_fails(tmp_path):
    cfg = StoreConfig(store=str(tmp_path / "store"))
    catalog = open_catalog(cfg)
    ensure_namespace(catalog, cfg.namespace)

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        create_or_load(catalog, cfg.identifier(LABELS), broken)
