"""Two processes committing nights at the same moment never lose or duplicate a row.

Each child process opens the embedded catalog itself, anti-joins against the same snapshot and
waits at a barrier right before its features commit, so both commits race for real: the catalog
accepts one and refuses the other, which then re-checks what the winner added (see
jobs/corpus/commit.py). The store-level nights are synthetic (no Spark); a Spark night racing
another is in test_corpus_update.py.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter

import pytest

from jobs.corpus.maintenance import referenced
from jobs.corpus.tags import published_dates
from tests.jobs.corpus_support import concurrent_child, open_store, run_children, sha, synthetic_night

D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"
A, B, C, DD, E, F, G = (sha(x) for x in "abcdefg")


def _race(store, first: tuple[str, list[str]], second: tuple[str, list[str]]) -> list[dict]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=concurrent_child, args=(str(store), d, s, barrier, results))
             for d, s in (first, second)]
    return sorted(run_children(procs, results), key=lambda r: r["date"])


def _head_keys(tables) -> Counter:
    tables.refresh()
    got = tables.features.scan(selected_fields=("sha256", "feature_version")).to_arrow()
    return Counter(zip(got.column("sha256").to_pylist(), got.column("feature_version").to_pylist(), strict=True))


def _unreferenced_data_files(tables) -> list[str]:
    keep = referenced(tables.features)
    root = tables.features.location().removeprefix("file://") + "/data"
    found = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    return [f for f in found if f not in keep]


@pytest.fixture
def store(tmp_path):
    tables = open_store(tmp_path / "store")
    synthetic_night(tables, D1, [A, B, C])
    return tmp_path / "store"


def test_disjoint_nights_both_commit(store):
    r2, r3 = _race(store, (D2, [C, DD, E]), (D3, [F, G]))
    assert r2["ok"] and r3["ok"], (r2, r3)
    assert sorted([r2["attempts"], r3["attempts"]]) == [1, 2]  # the loser refreshed, re-checked, retried
    tables = open_store(store)
    assert _head_keys(tables) == Counter({(s, "v1"): 1 for s in (A, B, C, DD, E, F, G)})
    assert published_dates(tables.features) == [D1, D2, D3]
    assert _unreferenced_data_files(tables) == []


def test_the_same_night_twice_adopts_instead_of_duplicating(store):
    r1, r2 = _race(store, (D2, [DD, E]), (D2, [DD, E]))
    assert r1["ok"] and r2["ok"], (r1, r2)
    assert sorted([(r["added"], r["adopted"]) for r in (r1, r2)]) == [(0, 2), (2, 0)]
    tables = open_store(store)
    assert _head_keys(tables) == Counter({(s, "v1"): 1 for s in (A, B, C, DD, E)})
    assert _unreferenced_data_files(tables) == []  # the adopter deleted its own files


def test_overlapping_nights_one_fails_clearly_then_reruns(store):
    r2, r3 = _race(store, (D2, [DD, E]), (D3, [E, F]))
    assert [r2["ok"], r3["ok"]].count(True) == 1, (r2, r3)
    failed = r2 if not r2["ok"] else r3
    assert failed["error"].startswith("ConcurrentRunError: another run committed 1 of this night's 2 new samples")
    assert "re-run the date" in failed["error"]
    tables = open_store(store)
    assert _head_keys(tables) == Counter({(s, "v1"): 1 for s in ([A, B, C, DD, E] if r2["ok"] else [A, B, C, E, F])})
    assert _unreferenced_data_files(tables) == []
    rerun = synthetic_night(tables, failed["date"], [DD, E] if failed is r2 else [E, F])
    assert rerun.publication.added_rows == 1
    assert _head_keys(tables) == Counter({(s, "v1"): 1 for s in (A, B, C, DD, E, F)})
