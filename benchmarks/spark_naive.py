"""The naive Spark way, the baseline binfeat's job is compared with: ``binaryFile`` + a classic pickled
row-at-a-time Python UDF computing the byte-level groups (binfeat's own kernels) and sha256.

It computes less than binfeat's job, so its cost is read against the same function in a plain loop
(:func:`naive_loop`).
"""

from __future__ import annotations

import hashlib

from benchmarks.input_files import FileEntry
from benchmarks.measure import Sample, is_jvm, timed


def naive_features(content: bytes) -> tuple:
    """The byte-level groups (histogram, entropy histogram, strings) and sha256 of one file."""
    from extract.kernels import scan_bytes

    scan = scan_bytes(content)
    pat = scan["patterns"]
    return (
        hashlib.sha256(content).hexdigest(),
        scan["histogram"].tolist(),
        scan["entropy_grid"].tolist(),
        scan["numstrings"],
        scan["string_bytes"],
        scan["printabledist"].tolist(),
        pat["paths"],
        pat["urls"],
        pat["registry"],
        pat["MZ"],
    )


def _naive_schema():
    from pyspark.sql import types as T

    arr = T.ArrayType(T.LongType())
    return T.StructType(
        [
            T.StructField("sha256", T.StringType()),
            T.StructField("byte_histogram", arr),
            T.StructField("byte_entropy_histogram", arr),
            T.StructField("numstrings", T.LongType()),
            T.StructField("printables", T.LongType()),
            T.StructField("printabledist", arr),
            T.StructField("paths", T.LongType()),
            T.StructField("urls", T.LongType()),
            T.StructField("registry", T.LongType()),
            T.StructField("MZ", T.LongType()),
        ]
    )


def naive_job(spark, paths: list[str], out: str) -> int:
    """The naive job over ``paths``, written to Parquet at ``out``; the rows written."""
    from pyspark.sql import functions as F

    udf = F.udf(naive_features, _naive_schema(), useArrow=False)  # the classic pickled UDF
    df = spark.read.format("binaryFile").load(paths)
    df.select("path", "length", udf("content").alias("f")).write.mode("overwrite").parquet(out)
    return spark.read.parquet(out).count()


def naive_loop(entries: list[FileEntry]) -> Sample:
    """The same byte-level function in a plain Python loop (the reference for the naive way)."""
    naive_features(b"warm-up" * 1000)
    with timed(sum(e.size for e in entries), len(entries), tree=True, exclude=is_jvm) as s:
        for e in entries:
            with open(e.path, "rb") as f:
                naive_features(f.read())
    return s
