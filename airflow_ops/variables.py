"""Deployment settings as Airflow Variables, and the Jinja that reads them when a task runs.

Both DAGs take where the corpus lives from the same Variables, so they are declared once here.
A Variable is read at task run time (never when the DAG file is parsed); unset or empty means
its default. The store is the embedded Iceberg catalog in ``binfeat_store`` unless
``binfeat_catalog`` names a pyiceberg catalog configured on the workers, which then wins.

Never put a credential in a Variable: these values become command-line arguments and log lines.
Catalog credentials belong in the workers' ``.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__*``
environment, S3 keys in the AWS chain or the connection ``binfeat_aws_conn_id`` names.
"""

from __future__ import annotations

# name -> (default, meaning); docs/airflow.md has the same table (a test compares them).
VARIABLES: dict[str, tuple[str, str]] = {
    "binfeat_store": (
        "/data/binfeat/store",
        "folder of the embedded Iceberg catalog (catalog.db, warehouse/); ignored when binfeat_catalog is set",
    ),
    "binfeat_catalog": (
        "",
        "a pyiceberg catalog name configured on the workers (.pyiceberg.yaml or PYICEBERG_CATALOG__<NAME>__*); "
        "empty: the embedded catalog in binfeat_store",
    ),
    "binfeat_warehouse": (
        "",
        "where the tables' files go when they are created: s3://bucket/prefix or an absolute path; "
        "empty: the catalog's own (<store>/warehouse for the embedded one)",
    ),
    "binfeat_namespace": ("binfeat", "namespace of the features and labels tables"),
    "binfeat_incoming_root": ("/data/binfeat/incoming", "the day's files are in <root>/<YYYY-MM-DD>"),
    "binfeat_labels_root": ("/data/binfeat/labels", "the day's labels feed is in <root>/<YYYY-MM-DD>"),
    "binfeat_s3_endpoint_url": (
        "",
        "S3-compatible endpoint for s3:// inputs, feeds and warehouse (when the catalog sets no s3.endpoint); "
        "empty: AWS",
    ),
    "binfeat_aws_conn_id": ("", "Airflow connection with S3 keys (login/password); empty: the workers' AWS chain"),
    "binfeat_statsd_host": ("", "StatsD host for the job's summary metrics; empty: off"),
    "binfeat_statsd_port": ("8125", "StatsD port"),
}


def variable(name: str) -> str:
    """Jinja for a Variable: its value, else its default (None when the default is empty: option left out)."""
    default = VARIABLES[name][0]
    fallback = repr(default) if default else "None"
    return "{{ var.value.get('" + name + "', '') or " + fallback + " }}"


def under_root(variable_name: str, param: str) -> str:
    """Jinja for the ``param`` Param's value, else ``<Variable>/<date>`` (the run's date)."""
    default = VARIABLES[variable_name][0]
    return (
        "{{ params." + param + " or ((var.value.get('" + variable_name + "', '') or '" + default + "') ~ '/' ~ "
        "(params.date or ds | default(None))) }}"
    )


# The run's date: the `date` param, else the run's logical date. A manual run without a logical date
# and without the param renders None, which the first task reports in one line.
DATE = "{{ params.date or ds | default(None) }}"

# The embedded store unless binfeat_catalog is set (exactly one of them reaches the job).
STORE = (
    "{{ None if var.value.get('binfeat_catalog', '') else "
    "(var.value.get('binfeat_store', '') or '" + VARIABLES["binfeat_store"][0] + "') }}"
)
CATALOG = variable("binfeat_catalog")


def store_settings() -> dict[str, str]:
    """Where the corpus lives, as the job's options by name: every task that touches the store takes these."""
    return {
        "store": STORE,
        "catalog": CATALOG,
        "warehouse": variable("binfeat_warehouse"),
        "namespace": variable("binfeat_namespace"),
        "s3_endpoint_url": variable("binfeat_s3_endpoint_url"),
    }
