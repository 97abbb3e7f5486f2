"""A rendezvous before each create step of a new store (tests only), so that racing processes
attempt every creation at once: the create-or-load path is taken for certain, not by luck.

:func:`install` patches :mod:`jobs.corpus.catalog` in this process: the first time it opens the
embedded catalog, creates the namespace and creates each table, it first waits until ``parties``
processes have arrived at that same step (a file per process in ``directory``).

``python -m tests.jobs.create_barrier DIR PARTIES ARGS...`` runs ``binfeat corpus update ARGS``
with the rendezvous installed (the two-runs-at-once test's processes).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TIMEOUT_S = 300.0


def wait(directory: str, step: str, parties: int, timeout_s: float = TIMEOUT_S) -> None:
    """Arrive at ``step`` and wait for ``parties`` processes to have arrived there."""
    root = Path(directory)
    (root / f"{step}.{os.getpid()}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(root.glob(f"{step}.*"))) < parties:
        if time.monotonic() > deadline:
            raise RuntimeError(f"create barrier: only {len(list(root.glob(f'{step}.*')))} of {parties} "
                               f"processes reached {step!r} within {timeout_s:.0f} s")
        time.sleep(0.01)


def install(directory: str, parties: int = 2) -> None:
    from jobs.corpus import catalog as module

    original = module.embedded_catalog
    passed: set[str] = set()

    def once(step: str) -> None:
        if step not in passed:
            passed.add(step)
            wait(directory, step, parties)

    def embedded_catalog(*args, **kwargs):
        once("catalog")
        cat = original(*args, **kwargs)
        create_namespace, create_table_transaction = cat.create_namespace, cat.create_table_transaction

        def namespace(ns, *a, **k):
            once(f"namespace-{ns}")
            return create_namespace(ns, *a, **k)

        def table_transaction(ident, *a, **k):
            once("table-" + "-".join(ident))
            return create_table_transaction(ident, *a, **k)

        cat.create_namespace, cat.create_table_transaction = namespace, table_transaction
        return cat

    module.embedded_catalog = embedded_catalog


def open_after_barrier(store: str, directory: str, parties: int, results) -> None:
    """A process of the first-open race: open (creating) a new store, report the tables it got."""
    try:
        install(directory, parties)
        from tests.jobs.corpus_support import open_store

        tables = open_store(store)
        results.put({"ok": True, "features": str(tables.features.metadata.table_uuid),
                     "labels": str(tables.labels.metadata.table_uuid),
                     "spec": [f.name for f in tables.features.spec().fields],
                     "key": sorted(tables.labels.schema().identifier_field_names())})  # fmt: skip
    except Exception as exc:  # reported to the test, which asserts on it
        results.put({"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"})


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    from jobs.corpus.cli import update_main

    sys.exit(update_main(sys.argv[3:]))
