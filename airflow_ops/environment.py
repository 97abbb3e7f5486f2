"""The environment spark-submit runs with: the venv's Spark first on PATH, and S3 credentials.

Credentials never go through the provider's ``env_vars``: with a YARN or Kubernetes master it turns
them into ``--conf spark.yarn.appMasterEnv.K=V`` / ``spark.kubernetes.driverEnv.K=V`` on the command
line, which the hook logs (masking only keys that contain "secret" or "password"). Instead the task
process's own environment holds them while the submit runs (:func:`process_environment`): every
process the hook starts (spark-submit, its status polls, its kill commands) inherits them, and
nothing puts them on a command line. Under Airflow 3 each task try runs in its own process, so the
change is scoped to that try and undone when it ends.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
PYICEBERG_PREFIX = "PYICEBERG_CATALOG__"
# A pyiceberg setting whose last name part holds one of these is a secret (s3.secret-access-key,
# s3.session-token, credential, token, client.access-key-id, ...); its value is masked in task logs.
SECRET_WORDS = ("SECRET", "TOKEN", "CREDENTIAL", "PASSWORD", "ACCESS_KEY", "ACCESS-KEY")


def aws_environment(conn_id: str | None) -> dict[str, str]:
    """AWS_* variables from an Airflow connection (login, password, ``aws_session_token`` and
    ``region_name`` extras); empty without a connection id (boto3's own chain then applies).

    Every credential value is registered with Airflow's secrets masker, so that a job printing it
    (spark-submit's output is streamed into the task log) shows ``***`` instead.
    """
    if not conn_id:
        return {}
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    env = {
        "AWS_ACCESS_KEY_ID": conn.login or "",
        "AWS_SECRET_ACCESS_KEY": conn.password or "",
        "AWS_SESSION_TOKEN": str(extra.get("aws_session_token") or ""),
        "AWS_DEFAULT_REGION": str(extra.get("region_name") or ""),
    }
    env = {k: v for k, v in env.items() if v}
    for key in CREDENTIAL_VARIABLES:
        if key in env:
            mask_secret(env[key])
    return env


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The credential values in an environment: the AWS keys, and pyiceberg catalog settings
    (``PYICEBERG_CATALOG__<NAME>__<KEY>``) whose key names a secret, or a password inside a URI
    (a SQL catalog's ``postgresql://user:password@host/db``)."""
    environ = os.environ if environ is None else environ
    out = [environ[k] for k in CREDENTIAL_VARIABLES if environ.get(k)]
    for key, value in environ.items():
        if not key.startswith(PYICEBERG_PREFIX) or not value:
            continue
        setting = key.rsplit("__", 1)[-1].upper()
        if any(word in setting for word in SECRET_WORDS):
            out.append(value)
        elif "://" in value:
            with contextlib.suppress(ValueError):
                password = urlsplit(value).password
                if password:
                    out.append(password)
    return out


def mask_environment_credentials() -> None:
    """Register the credentials already in this process's environment with the secrets masker."""
    from airflow.sdk.log import mask_secret

    for value in environment_secrets():
        mask_secret(value)


def spark_bin_dir(explicit: str | None = None) -> str | None:
    """The folder to put first on spark-submit's PATH: ``explicit``, else the folder of this
    interpreter when it holds ``spark-submit`` (pip's pyspark installs it there), else None."""
    if explicit:
        return explicit
    here = os.path.dirname(sys.executable)
    return here if os.path.exists(os.path.join(here, "spark-submit")) else None


def with_path_first(env: Mapping[str, str], bin_dir: str | None) -> dict[str, str]:
    """``env`` plus a PATH that starts with ``bin_dir`` (the current PATH, or env's, follows)."""
    out = dict(env)
    if bin_dir:
        rest = out.get("PATH", os.environ.get("PATH", ""))
        out["PATH"] = os.pathsep.join(p for p in (bin_dir, rest) if p)
    return out


@contextmanager
def process_environment(extra: Mapping[str, str]) -> Iterator[None]:
    """Set ``extra`` in this process's environment for the block; restore every variable after."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update({str(k): str(v) for k, v in extra.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
