"""The one rule that turns a job-arguments mapping into a command line, on crafted mappings."""

from __future__ import annotations

import pytest

from airflow_ops.job_args import check_keys, command_line


def test_rule_on_every_kind_of_value():
    args = {
        "input": "s3://bucket/in/",
        "output": "/data/out",
        "date": "2026-11-20",
        "max_error_share": 0.25,
        "partitions": 8,
        "allow_missing_labels": True,
        "allow_missing_incoming": False,
        "labels": None,
        "conf": ["spark.a=1", "spark.b=2"],
        "fuzzy_hashes": ("tlsh",),
        "store": "",
    }
    assert command_line(args, positional=("input", "output")) == [
        "s3://bucket/in/", "/data/out",
        "--date", "2026-11-20",
        "--max-error-share", "0.25",
        "--partitions", "8",
        "--allow-missing-labels",
        "--conf", "spark.a=1", "--conf", "spark.b=2",
        "--fuzzy-hashes", "tlsh",
        "--store", "",
    ]  # fmt: skip


def test_positional_order_is_declared_not_mapping_order():
    assert command_line({"output": "o", "quiet": True, "input": "i"}, positional=("input", "output")) == [
        "i",
        "o",
        "--quiet",
    ]


def test_strings_are_never_parsed():
    # Only real booleans and None are special: the strings "True", "None", "False" are values.
    assert command_line({"a": "True", "b": "None", "c": "False"}) == ["--a", "True", "--b", "None", "--c", "False"]


@pytest.mark.parametrize(
    ("args", "positional", "error", "match"),
    [
        ({"max-error-share": 1}, (), ValueError, "not an option name"),
        ({"MaxErrors": 1}, (), ValueError, "not an option name"),
        ({"_x": 1}, (), ValueError, "not an option name"),
        ({"input": "i"}, ("input", "output"), ValueError, "'output' is required"),
        ({"input": None, "output": "o"}, ("input", "output"), ValueError, "positional"),
        ({"input": True, "output": "o"}, ("input", "output"), ValueError, "positional"),
        ({"conf": {"a": 1}}, (), TypeError, "cannot write dict"),
        ({"conf": [["a"]]}, (), TypeError, "cannot write list"),
        ({"conf": [None]}, (), TypeError, "cannot write NoneType"),
        ({"tags": {"a"}}, (), TypeError, "cannot write set"),
    ],
)
def test_refusals(args, positional, error, match):
    with pytest.raises(error, match=match):
        command_line(args, positional)


def test_check_keys_needs_a_mapping():
    with pytest.raises(TypeError, match="mapping"):
        check_keys(["--date", "x"])  # type: ignore[arg-type]
