"""The corpus store as a source of feature rows for ``extract.training_matrix`` and re-vectorising.

:class:`StoreSource` implements the small protocol of :mod:`extract.sources` (``feature_batches``
and ``count_rows``), so extract reads the corpus as of a date without importing the store's code.
The rows are exactly those of ``binfeat corpus read --as-of D``: ``features`` as of D joined with
``labels`` as of D, in the same order, read a data file's row group at a time (never the whole
table in memory; the labels as of D, a few short columns per sample, are held for the join).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from jobs.corpus.catalog import StoreConfig, StoreError, Tables, open_tables


class StoreSource:
    """A corpus store (``--store DIR`` or ``--catalog NAME``) read as of a date.

    ``as_of``: a date (``"YYYY-MM-DD"`` or a :class:`datetime.date`) that the store published, or
    None for the latest published one. The tables are opened on first use.
    """

    def __init__(self, cfg: StoreConfig | None = None, *, tables: Tables | None = None) -> None:
        if cfg is None and tables is None:
            raise StoreError("give the store's configuration or its opened tables")
        self.cfg = cfg
        self._tables = tables

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = open_tables(self.cfg)
        return self._tables

    def date(self, as_of: Any = None) -> str:
        """The published date ``as_of`` stands for; StoreError when there is none."""
        from jobs.corpus.read import as_of as resolve
        from jobs.corpus.tags import check_date, published_dates

        if as_of is None:
            dates = published_dates(self.tables.features)
            if not dates:
                raise StoreError("the store has published nothing yet: run binfeat corpus update first")
            return dates[-1]
        date = as_of.isoformat() if isinstance(as_of, dt.date) else check_date(str(as_of))
        resolve(self.tables, date)  # StoreError now when D is not (or no longer) published
        return date

    def feature_batches(self, as_of: Any = None, columns: Sequence[str] | None = None) -> pa.RecordBatchReader:
        """The rows as of ``as_of`` (features with labels joined), ``columns`` only when given.

        The reader's schema is known before any data file is opened; batches are read when consumed.
        """
        from jobs.corpus.read import iter_reading, plan_reading

        tables = self.tables
        reading = plan_reading(tables, self.date(as_of), list(columns) if columns else None)

        def batches() -> Iterator[pa.RecordBatch]:
            for table in iter_reading(tables, reading):
                yield from table.to_batches()

        return pa.RecordBatchReader.from_batches(reading.schema, batches())

    def count_rows(self, as_of: Any = None) -> int:
        """Rows as of ``as_of``, from D's record (no data file opened)."""
        from jobs.corpus.read import as_of as resolve

        return resolve(self.tables, self.date(as_of)).rows

    def count_not_error(self, as_of: Any = None) -> int:
        """Rows as of ``as_of`` whose status is not ``error`` (the ``status`` column alone is read),
        so that a matrix without the error rows is allocated once, at its size."""
        import pyarrow.compute as pc

        n = 0
        for batch in self.feature_batches(as_of, ["status"]):
            n += batch.num_rows - int(pc.sum(pc.fill_null(pc.equal(batch.column(0), "error"), False)).as_py() or 0)
        return n

    def feature_version(self, as_of: Any = None) -> str:
        """The feature version of the rows as of ``as_of``."""
        from jobs.corpus.read import as_of as resolve

        return resolve(self.tables, self.date(as_of)).feature_version
