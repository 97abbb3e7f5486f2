"""The --py-files archive: both packages, no caches, the same bytes from the same sources."""

from __future__ import annotations

import zipfile

from jobs.package import build_pyfiles_zip


def test_archive_is_complete_and_reproducible(tmp_path):
    a = build_pyfiles_zip(tmp_path / "a" / "binfeat.zip")
    b = build_pyfiles_zip(tmp_path / "b" / "binfeat.zip")
    assert a.read_bytes() == b.read_bytes()
    names = zipfile.ZipFile(a).namelist()
    assert {
        "extract/__init__.py",
        "jobs/__init__.py",
        "jobs/extract_features.py",
        "jobs/log4j2.properties",
        "jobs/pyspark_daemon.py",  # for clusters that opt in with spark.python.daemon.module
    } <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert names == sorted(names)
