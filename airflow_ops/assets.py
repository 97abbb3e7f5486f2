"""The Asset a published corpus snapshot updates: training DAGs use ``schedule=[CORPUS_SNAPSHOT]``."""

from __future__ import annotations

from airflow.sdk import Asset

# One asset for "a new daily snapshot exists"; each event's extra says which date and manifest.
CORPUS_SNAPSHOT = Asset(name="binfeat_corpus_snapshot", uri="binfeat://corpus/snapshot")
