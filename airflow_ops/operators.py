"""Operators that spark-submit binfeat's jobs: ``binfeat extract`` and ``binfeat corpus update``.

They are SparkSubmitOperators with the application and its arguments built from typed, templated
fields, so a DAG says *what* to run and the provider does the submitting, driver tracking and
``on_kill`` (which stops the Spark application: it kills spark-submit in client mode, the driver
in standalone cluster mode, the YARN application or the driver pod). Three rules hold here:

* the Airflow run id goes into the job (``--run-id``), so it is on the job's log lines and in its
  summary;
* no credential is ever on the command line: S3 keys come from an Airflow connection
  (``aws_conn_id``) or the worker's environment and reach spark-submit as process environment
  (:class:`~airflow_ops.spark.EnvSparkSubmitHook`), and are registered with Airflow's secrets
  masker so that spark-submit's streamed output cannot leak them into the task log either;
* the hook is created lazily, at execute time (creating it reads the connection).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from airflow_ops.spark import EnvSparkSubmitHook

if TYPE_CHECKING:
    from airflow.sdk import Context


def job_path(module: str) -> str:
    """File of a binfeat job module (e.g. ``jobs.corpus_update``) without importing it (no pyspark)."""
    spec = find_spec(module)
    if spec is None or not spec.origin:
        raise FileNotFoundError(f"cannot find {module}: install binfeat on the Airflow worker")
    return spec.origin


class BinfeatSparkSubmitOperator(SparkSubmitOperator):
    """Base of binfeat's Spark operators: defaults for the venv's Spark, environment, credentials.

    :param job_module: module whose file is the application (used when ``application`` is empty).
    :param python: interpreter of the executors and driver (``spark.pyspark.python``); default:
        the worker's own interpreter, i.e. the venv binfeat is installed in.
    :param spark_bin_dir: folder put first on spark-submit's PATH; default: the folder of the
        worker's interpreter when it holds ``spark-submit`` (pip's pyspark installs it there).
    :param process_env: non-secret environment for spark-submit (templated), never ``--conf``.
    :param aws_conn_id: Airflow connection whose login/password (and ``region_name``,
        ``aws_session_token`` extras) become AWS_* variables of the spark-submit process.
    :param airflow_run_id: passed to the job as ``--run-id`` (templated; default ``{{ run_id }}``).
    """

    template_fields: Sequence[str] = (
        *SparkSubmitOperator.template_fields,
        "process_env",
        "aws_conn_id",
        "airflow_run_id",
    )
    job_module: str = ""

    def __init__(
        self,
        *,
        application: str = "",
        conn_id: str = "spark_default",
        conf: dict[str, Any] | None = None,
        name: str = "binfeat",
        python: str | None = None,
        spark_bin_dir: str | None = None,
        process_env: dict[str, str] | None = None,
        aws_conn_id: str | None = None,
        airflow_run_id: str = "{{ run_id }}",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("env_vars"):
            raise ValueError("use process_env (never on the command line) instead of env_vars")
        if kwargs.get("application_args"):
            raise ValueError(f"{type(self).__name__} builds application_args from its own fields")
        super().__init__(application=application, conn_id=conn_id, conf=conf, name=name, **kwargs)
        self.python = python
        self.spark_bin_dir = spark_bin_dir
        self.process_env = process_env or {}
        self.aws_conn_id = aws_conn_id
        self.airflow_run_id = airflow_run_id

    # --- what subclasses provide -------------------------------------------------------------
    def job_arguments(self) -> list[str]:
        """The job's own arguments, from the rendered fields."""
        raise NotImplementedError

    # --- building the submit ------------------------------------------------------------------
    def prepare(self) -> None:
        """Fill application, conf and arguments from the rendered fields (also used by tests)."""
        if not self.application:
            self.application = job_path(self.job_module)
        python = self.python or sys.executable
        defaults = {"spark.pyspark.python": python, "spark.pyspark.driver.python": python}
        self.conf = {**defaults, **(self.conf or {})}
        self.application_args = [*self.job_arguments(), "--run-id", str(self.airflow_run_id)]

    def spark_process_env(self) -> dict[str, str]:
        """Environment added to spark-submit's: PATH with the venv first, process_env, credentials."""
        env = {str(k): str(v) for k, v in (self.process_env or {}).items()}
        bin_dir = self.spark_bin_dir
        if bin_dir is None:
            here = os.path.dirname(sys.executable)
            bin_dir = here if os.path.exists(os.path.join(here, "spark-submit")) else None
        if bin_dir:
            env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.environ.get("PATH", ""))])
        env.update(self._aws_env())
        return env

    def _aws_env(self) -> dict[str, str]:
        if not self.aws_conn_id or str(self.aws_conn_id) == "None":
            return {}
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        conn = BaseHook.get_connection(self.aws_conn_id)
        extra = conn.extra_dejson
        env: dict[str, str] = {}
        if conn.login:
            env["AWS_ACCESS_KEY_ID"] = conn.login
        if conn.password:
            env["AWS_SECRET_ACCESS_KEY"] = conn.password
        if extra.get("aws_session_token"):
            env["AWS_SESSION_TOKEN"] = extra["aws_session_token"]
        if extra.get("region_name"):
            env["AWS_DEFAULT_REGION"] = extra["region_name"]
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if key in env:
                mask_secret(env[key])
        return env

    def _get_hook(self) -> EnvSparkSubmitHook:
        """The provider's hook, built at execute time, with our environment instead of env_vars."""
        return EnvSparkSubmitHook(
            conf=self.conf,
            conn_id=self._conn_id,
            files=self.files,
            py_files=self.py_files,
            archives=self._archives,
            driver_class_path=self.driver_class_path,
            jars=self.jars,
            java_class=self._java_class,
            packages=self.packages,
            exclude_packages=self.exclude_packages,
            repositories=self._repositories,
            total_executor_cores=self._total_executor_cores,
            executor_cores=self._executor_cores,
            executor_memory=self._executor_memory,
            driver_memory=self._driver_memory,
            keytab=self.keytab,
            principal=self.principal,
            proxy_user=self.proxy_user,
            name=self.name,
            num_executors=self._num_executors,
            status_poll_interval=self._status_poll_interval,
            application_args=self.application_args,
            verbose=self._verbose,
            spark_binary=self._spark_binary,
            properties_file=self.properties_file,
            yarn_queue=self._yarn_queue,
            deploy_mode=self._deploy_mode,
            use_krb5ccache=self._use_krb5ccache,
            post_submit_commands=self.post_submit_commands,
            track_driver_via_k8s_api=self._track_driver_via_k8s_api,
            yarn_track_via_rm_api=self._yarn_track_via_rm_api,
            yarn_rm_auth=self._yarn_rm_auth,
            process_env=self.spark_process_env(),
        )

    def build_command(self) -> list[str]:
        """The exact spark-submit command this operator runs (rendered fields; for tests and docs)."""
        self.prepare()
        hook = self._get_hook()
        return hook._build_spark_submit_command(self.application)

    def execute(self, context: Context) -> None:
        self.prepare()
        self._hook = None  # a retry rebuilds the hook from freshly rendered fields
        return super().execute(context)


def _opt(flag: str, value: object) -> list[str]:
    """``[flag, value]`` unless the value is empty (a Param left at None renders as 'None')."""
    if value is None or str(value).strip() in ("", "None"):
        return []
    return [flag, str(value)]


def _flag(flag: str, value: object) -> list[str]:
    """``[flag]`` when true; accepts a bool or its rendered text ('True', 'true', '1')."""
    on = value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
    return [flag] if on else []


class ExtractOperator(BinfeatSparkSubmitOperator):
    """spark-submit ``jobs/extract_features.py INPUT OUTPUT``: one feature row per file, Parquet out.

    :param input_path: folder, manifest, glob or ``s3://`` prefix (templated).
    :param output_path: Parquet dataset to create or replace atomically (templated).
        (``output`` is taken: it is BaseOperator's XComArg.)
    """

    template_fields: Sequence[str] = (
        *BinfeatSparkSubmitOperator.template_fields,
        "input_path",
        "output_path",
        "s3_endpoint_url",
        "partitions",
    )
    job_module = "jobs.extract_features"

    def __init__(
        self,
        *,
        input_path: str,
        output_path: str,
        s3_endpoint_url: str | None = None,
        partitions: int | str | None = None,
        dedupe: bool = False,
        name: str = "binfeat-extract",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.input_path = input_path
        self.output_path = output_path
        self.s3_endpoint_url = s3_endpoint_url
        self.partitions = partitions
        self.dedupe = dedupe

    def job_arguments(self) -> list[str]:
        return [
            str(self.input_path),
            str(self.output_path),
            *_opt("--s3-endpoint-url", self.s3_endpoint_url),
            *_opt("--partitions", self.partitions),
            *_flag("--dedupe", self.dedupe),
            "--quiet",
        ]


class CorpusUpdateOperator(BinfeatSparkSubmitOperator):
    """spark-submit ``jobs/corpus_update.py``: add a day's files to the corpus, publish its snapshot.

    Every job option is a templated field; see ``binfeat corpus update --help`` for meanings.
    StatsD metrics are sent only when ``statsd_host`` renders non-empty.
    """

    template_fields: Sequence[str] = (
        *BinfeatSparkSubmitOperator.template_fields,
        "date",
        "incoming",
        "store",
        "labels",
        "max_error_share",
        "keep",
        "partitions",
        "s3_endpoint_url",
        "allow_missing_labels",
        "allow_missing_incoming",
        "statsd_host",
        "statsd_port",
        "statsd_prefix",
    )
    job_module = "jobs.corpus_update"

    def __init__(
        self,
        *,
        store: str,
        incoming: str,
        date: str = "{{ ds }}",
        labels: str | None = None,
        max_error_share: float | str = 0.1,
        keep: int | str = 14,
        partitions: int | str | None = None,
        s3_endpoint_url: str | None = None,
        allow_missing_labels: bool | str = True,
        allow_missing_incoming: bool | str = False,
        statsd_host: str | None = None,
        statsd_port: int | str = 8125,
        statsd_prefix: str = "binfeat.corpus",
        name: str = "binfeat-corpus-update",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.store = store
        self.incoming = incoming
        self.date = date
        self.labels = labels
        self.max_error_share = max_error_share
        self.keep = keep
        self.partitions = partitions
        self.s3_endpoint_url = s3_endpoint_url
        self.allow_missing_labels = allow_missing_labels
        self.allow_missing_incoming = allow_missing_incoming
        self.statsd_host = statsd_host
        self.statsd_port = statsd_port
        self.statsd_prefix = statsd_prefix

    def job_arguments(self) -> list[str]:
        args = [
            "--date", str(self.date),
            "--incoming", str(self.incoming),
            "--store", str(self.store),
            *_opt("--labels", self.labels),
            *_flag("--allow-missing-labels", self.allow_missing_labels),
            *_flag("--allow-missing-incoming", self.allow_missing_incoming),
            "--max-error-share", str(self.max_error_share),
            "--keep", str(self.keep),
            *_opt("--partitions", self.partitions),
            *_opt("--s3-endpoint-url", self.s3_endpoint_url),
        ]  # fmt: skip
        if _opt("--statsd-host", self.statsd_host):
            args += ["--statsd-host", str(self.statsd_host), "--statsd-port", str(self.statsd_port),
                     "--statsd-prefix", str(self.statsd_prefix)]  # fmt: skip
        return args
