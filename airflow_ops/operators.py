"""Operators that spark-submit binfeat's jobs: ``binfeat corpus update`` and ``binfeat extract``.

Each is the Apache Spark provider's ``SparkSubmitOperator`` used through its public surface only:
its constructor arguments (all of them, passed on untouched), ``execute`` and ``on_kill``. What
binfeat adds happens before the provider's ``execute`` runs:

* the application is the job's module file, and the job's arguments come from ONE templated
  mapping, ``job_args``, spelled out by :func:`airflow_ops.job_args.command_line`; the job's own
  argparse parser is the only list of options (a new job option needs no operator change);
* templates render natively (``render_template_as_native_obj``), so a Param typed as a number or a
  boolean reaches the command line as one, and ``None`` leaves an option out;
* the Airflow run id goes into the job as ``--run-id`` (its log lines and summary carry it);
* the submit runs with the venv's Spark first on PATH and S3 credentials in the task process's
  environment (:mod:`airflow_ops.environment`), never on a command line and never in a log.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from airflow_ops.environment import (
    aws_environment,
    mask_environment_credentials,
    process_environment,
    spark_bin_dir,
    with_path_first,
)
from airflow_ops.job_args import check_keys, command_line
from airflow_ops.spark_jobs import CORPUS_UPDATE, EXTRACT, SparkJob

if TYPE_CHECKING:
    from airflow.sdk import Context


class SparkJobOperator(SparkSubmitOperator):
    """spark-submit one of binfeat's jobs (``job``), its arguments from ``job_args``.

    :param job_args: the job's arguments by name (templated, rendered natively); see
        :mod:`airflow_ops.job_args` for how they become the command line.
    :param python: interpreter of the driver and executors (``spark.pyspark.python``); default:
        the task's own interpreter, i.e. the venv binfeat is installed in.
    :param spark_bin_dir: folder put first on spark-submit's PATH; default: the folder of the
        task's interpreter when it holds ``spark-submit``.
    :param process_env: more environment for spark-submit (templated; not for secrets: use
        ``aws_conn_id`` or the worker's environment).
    :param aws_conn_id: Airflow connection whose login/password (and ``aws_session_token``,
        ``region_name`` extras) become the AWS_* environment of spark-submit (templated).

    Every other keyword argument is the provider's (``conn_id``, ``conf``, ``deploy_mode``, ...),
    except ``env_vars`` (it may put values on the command line) and ``application_args``
    (``job_args`` replaces it), which are refused.
    """

    template_fields: Sequence[str] = (
        *SparkSubmitOperator.template_fields,
        "job_args",
        "process_env",
        "aws_conn_id",
    )
    job: ClassVar[SparkJob]
    default_name: ClassVar[str] = "binfeat"
    default_job_args: ClassVar[Mapping[str, Any]] = {"run_id": "{{ run_id }}"}

    def __init__(
        self,
        *,
        job_args: Mapping[str, Any],
        python: str | None = None,
        spark_bin_dir: str | None = None,
        process_env: Mapping[str, str] | None = None,
        aws_conn_id: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("env_vars"):
            raise ValueError(
                "env_vars may become --conf on the command line (YARN, Kubernetes): use process_env for "
                "settings and aws_conn_id or the worker's environment for credentials"
            )
        if kwargs.get("application_args"):
            raise ValueError(f"{type(self).__name__} builds the job's arguments from job_args")
        kwargs.setdefault("render_template_as_native_obj", True)
        super().__init__(name=name or self.default_name, **kwargs)
        check_keys(job_args, self.job.positional)
        self.job_args = dict(job_args)
        for key, value in self.default_job_args.items():  # after the caller's, unless given
            self.job_args.setdefault(key, value)
        self.python = python
        self.spark_bin_dir = spark_bin_dir
        self.process_env = dict(process_env or {})
        self.aws_conn_id = aws_conn_id

    def job_argv(self) -> list[str]:
        """The job's own arguments from the (rendered) ``job_args``."""
        return command_line(self.job_args, self.job.positional)

    def submit_environment(self) -> dict[str, str]:
        """What the task's environment gets while spark-submit runs: PATH, process_env, credentials."""
        env = {str(k): str(v) for k, v in (self.process_env or {}).items()}
        env = with_path_first(env, spark_bin_dir(self.spark_bin_dir))
        env.update(aws_environment(self.aws_conn_id))
        return env

    def execute(self, context: Context) -> None:
        if not self.application:
            self.application = self.job.application()
        python = self.python or sys.executable
        self.conf = {"spark.pyspark.python": python, "spark.pyspark.driver.python": python, **(self.conf or {})}
        self.application_args = self.job_argv()
        mask_environment_credentials()
        with process_environment(self.submit_environment()):
            return super().execute(context)


class CorpusUpdateOperator(SparkJobOperator):
    """``binfeat corpus update`` for one date: append the day's new files to the Iceberg corpus,
    upsert the day's labels and publish the date (tag ``corpus-D``).

    ``job_args`` are the options of ``binfeat corpus update --help`` by name: ``date``,
    ``incoming``, where the corpus lives (``store`` for the embedded catalog or ``catalog`` for a
    pyiceberg catalog configured on the workers, and ``warehouse``, ``namespace``,
    ``s3_endpoint_url``), ``labels``, ``allow_missing_labels``, ``allow_missing_incoming``,
    ``max_error_share``, ``partitions``, ``statsd_host``/``statsd_port``, e.g.
    ``{"date": "{{ ds }}", "incoming": ..., "catalog": "{{ var.value.binfeat_catalog }}",
    "warehouse": "s3://corpus/binfeat", "max_error_share": 0.1}``. Like every value there,
    ``catalog`` and ``warehouse`` are templated; the job's parser checks them (exactly one of
    ``store`` and ``catalog``).
    """

    job = CORPUS_UPDATE
    default_name = "binfeat-corpus-update"


class ExtractOperator(SparkJobOperator):
    """``binfeat extract INPUT OUTPUT``: one feature row per file into a Parquet dataset.

    ``job_args`` holds ``input`` and ``output`` (the positional arguments) and any option of
    ``binfeat extract --help`` by name; progress lines are off (``quiet``) unless set to False.
    """

    job = EXTRACT
    default_name = "binfeat-extract"
    default_job_args: ClassVar[Mapping[str, Any]] = {**SparkJobOperator.default_job_args, "quiet": True}
