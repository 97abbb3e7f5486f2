"""Rows of a few fixtures equal the recorded golden digests, unless the feature version changed."""

from __future__ import annotations

import json

import extract
from tests.extract.golden import GOLDEN, row_digests


def test_golden_rows(fixture_files):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["feature_version"] == extract.FEATURE_VERSION, (
        "the feature version changed: check the new numbers, then run `python -m tests.extract.golden`")
    assert row_digests(fixture_files) == golden["rows"], (
        "numbers changed without a new feature_version: bump the changed group's version")
