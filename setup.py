"""binfeat: feature extraction for corpora of executable binaries, on one core or a Spark cluster."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
PACKAGES = ("binfeat", "extract", "jobs", "airflow_ops", "benchmarks")  # and their subpackages

# Every dependency whose upgrade could change a feature's value is bounded on both sides:
# a new parser, hash or numeric library means a new feature_version, decided by us, not by pip.
FEATURE_PINS = [
    "lief>=1.0.0,<1.1",  # the structural parser; its version is stamped into every row
    "mmh3>=5.0,<6",  # MurmurHash3 for hashed (variable-length) features
    "numpy>=2.0,<2.5",  # EMBER-compatible float32 entropy math
    "numba>=0.61,<0.69",  # compiled byte-level kernels
    "py-tlsh>=4.7,<5.1",  # TLSH fuzzy hash (the opt-in hashes group)
]

def _version() -> str:
    text = (HERE / "extract" / "version.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


setup(
    name="binfeat",
    version=_version(),
    description="Feature extraction for corpora of executable binaries (PE, ELF, Mach-O) with Spark",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=[f"{p}{tail}" for p in PACKAGES for tail in ("", ".*")]),
    package_data={"benchmarks": ["*.json", "*.txt"], "jobs": ["*.properties"]},
    install_requires=[
        *FEATURE_PINS,
        "pyarrow>=16,<27",
        # pyspark is pinned to the release of the newest pyspark-client (see README, "One pyspark"):
        # the Spark provider pulls pyspark-client, which writes into the same pyspark/ folder.
        "pyspark==4.2.0",
        "pandas>=2.2,<3",  # pyspark 4.2 warns at start-up with pandas >= 3
        "boto3>=1.34,<2",
        "psutil>=5.9",
        # the corpus store (jobs/corpus): Iceberg tables through pyiceberg, the embedded SQLite catalog;
        # bounded: binfeat's commit protocol relies on 0.12's transaction and ref semantics
        "pyiceberg[sql-sqlite,pyarrow]>=0.12,<0.13",
    ],
    extras_require={
        "airflow": [
            "apache-airflow>=3.3,<3.4",
            "apache-airflow-providers-apache-spark>=6.3,<7",
            "statsd>=4,<5",
        ],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            "moto[server]>=5.1,<6",
            "matplotlib>=3.8",
            "ppdeep>=20250000",  # reference ssdeep for the tests
            "dnfile>=0.15",  # reference .NET metadata reader for the tests
            "pyelftools>=0.31,<0.34",  # reference ELF reader for the tests
            "macholib>=1.16,<1.17",  # reference Mach-O reader for the tests
            "pefile==2024.8.26",  # test oracle: imphash, overlay start, Rich header, imports, directories
            "scikit-learn>=1.9,<1.10",  # test oracle: EMBER's FeatureHasher; the README's recipe
            "lightgbm>=4.7,<4.8",  # the tests train a real model on the sample corpus's matrix
            "duckdb>=1.1,<3",  # the corpus store's read recipes (tests/jobs/test_corpus_read_recipes.py)
            "polars>=1.20,<3",
        ],
        "bench": ["matplotlib>=3.8"],
    },
    entry_points={"console_scripts": ["binfeat=binfeat.cli:main"]},
)
