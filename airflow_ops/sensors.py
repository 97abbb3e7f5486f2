"""A sensor that a day's corpus snapshot is published, and the Asset event that announces it.

It reads ``<store>/snapshots/<date>.json``, the manifest ``jobs.corpus_store`` writes last and
atomically (the layout is restated here so that airflow_ops never imports the jobs package).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context

MANIFEST_FORMAT = "binfeat-corpus-snapshot/1"


def manifest_path(store: str, date: str) -> str:
    return os.path.join(store, "snapshots", f"{date}.json")


class SnapshotPublishedSensor(BaseSensorOperator):
    """Wait until the snapshot of ``date`` is published; push a short description of it to XCom.

    With ``outlets=[CORPUS_SNAPSHOT]`` the asset event carries ``date``, ``manifest``, ``rows`` and
    ``feature_version`` in its extra, so a training DAG scheduled on the asset knows what to read.

    :param store: the corpus store folder (templated).
    :param date: the snapshot date, YYYY-MM-DD (templated; default ``{{ ds }}``).
    :param min_rows: fail the check when the snapshot has fewer rows (templated).
    """

    template_fields: Sequence[str] = ("store", "date", "min_rows")

    def __init__(self, *, store: str, date: str = "{{ ds }}", min_rows: int | str = 1, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 60)
        super().__init__(**kwargs)
        self.store = store
        self.date = date
        self.min_rows = min_rows

    def poke(self, context: Context) -> PokeReturnValue | bool:
        path = manifest_path(str(self.store), str(self.date))
        try:
            with open(path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            self.log.info("snapshot %s not published yet (%s)", self.date, path)
            return False
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"snapshot manifest {path} is unreadable: {exc}") from None
        if manifest.get("format") != MANIFEST_FORMAT or manifest.get("date") != str(self.date):
            raise RuntimeError(f"{path} is not a binfeat snapshot manifest for {self.date}")
        rows = int(manifest.get("rows", {}).get("total", 0))
        if rows < int(self.min_rows):
            raise RuntimeError(f"snapshot {self.date} has {rows} rows, fewer than min_rows={self.min_rows}")
        info = {
            "date": manifest["date"],
            "manifest": path,
            "rows": rows,
            "feature_version": manifest.get("feature_version"),
            "label_coverage": manifest.get("labels", {}).get("coverage"),
            "run_id": manifest.get("run_id"),
        }
        self.log.info("snapshot %s published: %s", self.date, json.dumps(info, sort_keys=True))
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = info
        return PokeReturnValue(is_done=True, xcom_value=info)
