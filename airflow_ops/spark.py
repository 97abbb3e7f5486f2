"""A SparkSubmitHook that hands environment variables to the spark-submit process only.

The provider's ``env_vars`` become ``--conf spark.yarn.appMasterEnv.K=V`` (YARN) or
``--conf spark.kubernetes.driverEnv.K=V`` (Kubernetes) on the command line, which the hook logs
with only "secret"/"password" keys masked (an AWS access key id is logged in clear). This hook
never does that: its ``process_env`` goes into the environment of the spark-submit process
(``Popen(env=...)``) and nowhere else, whatever the master, so no value of it can appear in the
command or in the "Spark-Submit cmd" log line.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook


class EnvSparkSubmitHook(SparkSubmitHook):
    """SparkSubmitHook plus ``process_env``: variables for the spark-submit process, never ``--conf``.

    In client mode (and local mode) the driver is a child of spark-submit and inherits them; a
    driver in cluster mode does not: it must get credentials from the cluster (instance role,
    spark-env.sh), which is where they belong.
    """

    def __init__(self, *, process_env: dict[str, str] | None = None, **kwargs: Any) -> None:
        if kwargs.get("env_vars"):
            raise ValueError("EnvSparkSubmitHook takes process_env, not env_vars (which may become --conf)")
        super().__init__(**kwargs)
        self._process_env = {str(k): str(v) for k, v in (process_env or {}).items()}

    def submit(self, application: str = "", **kwargs: Any) -> str | None:
        if self._process_env and "env" not in kwargs:
            env = os.environ.copy()
            env.update(self._process_env)
            kwargs["env"] = env  # Popen searches spark-submit on this env's PATH
        return super().submit(application, **kwargs)
