"""The Asset a published corpus date updates: training DAGs use ``schedule=[CORPUS_FEATURES]``.

It names the corpus's features table, ``iceberg://<catalog>/<namespace>.features``, for the
default deployment (the embedded catalog, named ``binfeat``, and the namespace ``binfeat``). The
Asset is declared when the DAG file is parsed, before any Variable can be read, so it is the
corpus's stable name, not its address: each event's extra says which date it announces and where
the tables are (``location``; see :class:`airflow_ops.sensors.CorpusPublishedSensor`).
"""

from __future__ import annotations

from airflow.sdk import Asset

# Airflow 3 keeps a URI of a scheme no provider registers (here ``iceberg``) as written.
CORPUS_FEATURES = Asset(name="binfeat.features", uri="iceberg://binfeat/binfeat.features")
