"""A real Airflow deployment on 127.0.0.1 for tests: api-server, dag-processor and scheduler.

LocalExecutor on SQLite in a temporary AIRFLOW_HOME, free ports, a small ``[core] parallelism``, the
scheduler without its log server (``--skip-serve-logs``: it would bind 0.0.0.0:8793), the execution
API URL pointing at this api-server, and the REST API used as a user would (a JWT from
``/auth/token`` with the SimpleAuthManager's generated password). :meth:`AirflowServices.stop`
ends every process the deployment started (each service is a session leader; anything left, e.g. a
task's spark-submit, is found by the deployment's own AIRFLOW_HOME in its environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SERVICES = ("api-server", "dag-processor", "scheduler")
FINISHED = ("success", "failed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowServices:
    def __init__(self, root: Path, extra_env: dict[str, str], *, parallelism: int = 3) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "PYSPARK_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
                "AIRFLOW__API__BASE_URL": self.base,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "PATH": str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", ""),
                "PYTHONPATH": str(REPO),
                "SPARK_LOCAL_IP": "127.0.0.1",
            }
        )
        env.update(extra_env)
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}
        self._token: str | None = None

    # --- life cycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 420) -> None:
        t0 = time.monotonic()
        subprocess.run([PYTHON, "-m", "airflow", "db", "migrate"], env=self.env, check=True,
                       capture_output=True, timeout=600)  # fmt: skip
        self.timings["db_migrate_s"] = round(time.monotonic() - t0, 1)
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            "dag-processor": ["dag-processor"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
        }
        for name in SERVICES:
            out = open(self.root / f"{name}.log", "wb")
            self.procs[name] = subprocess.Popen(
                [PYTHON, "-m", "airflow", *commands[name]], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            out.close()
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                if self.request("GET", "/api/v2/monitor/health", auth=False)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the api-server did not answer:\n" + self.service_log("api-server")[-3000:])
            time.sleep(1)
        for dag_id in ("binfeat_corpus_update", "binfeat_maintenance"):
            self.wait_until(lambda d=dag_id: self.request("GET", f"/api/v2/dags/{d}")[0] == 200,
                            deadline - time.monotonic(), f"DAG {dag_id} parsed")  # fmt: skip
        self.wait_until(
            lambda: (self.request("GET", "/api/v2/monitor/health", auth=False)[1].get("scheduler") or {}).get(
                "status") == "healthy", deadline - time.monotonic(), "scheduler healthy",
        )  # fmt: skip
        self.timings["services_ready_s"] = round(time.monotonic() - t0, 1)

    def stop(self) -> list[int]:
        """Stop every process of this deployment; returns the pids that needed a SIGKILL."""
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 45
        for proc in self.procs.values():
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        killed = []
        for pid in self.own_processes():  # e.g. a task's spark-submit in a session of its own
            killed.append(pid)
            _signal(pid, signal.SIGKILL)
        return killed

    def own_processes(self) -> list[int]:
        """Live processes of this deployment: the services and their descendants, and any process
        whose environment carries this AIRFLOW_HOME (one that left its parent). Both, because a
        process that sets its title (the api-server) may overwrite its environment block."""
        marker = f"AIRFLOW_HOME={self.home}".encode()
        parents: dict[int, int] = {}
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
                parents[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
                if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"Z":
                    continue  # a zombie: already dead
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        found.add(int(entry))
            except (OSError, ValueError):
                continue
        roots = {p.pid for p in self.procs.values() if p.poll() is None}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if pid not in roots and ppid in roots:
                    roots.add(pid)
                    changed = True
        return sorted(found | roots)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.service_log(name)[-3000:]}")

    # --- REST API ------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
            status, body = self.request(
                "POST", "/auth/token", {"username": "admin", "password": passwords["admin"]}, auth=False
            )
            if status not in (200, 201):
                raise RuntimeError(f"login failed: {status} {body}")
            self._token = body["access_token"]
        return self._token

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        status, reply = self.request(method, path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path} -> {status}: {reply}")
        return reply

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> tuple[int, Any]:
        """POST a dag run; returns (status, reply) so that a refusal can be asserted."""
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date,
                                                                      "conf": conf or {}})  # fmt: skip

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances"
        return {ti["task_id"]: ti for ti in self.api("GET", path)["task_instances"]}

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.task_instances(dag_id, run_id).get(task_id, {}).get("state")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict:
        self.wait_until(lambda: self.run(dag_id, run_id)["state"] in FINISHED, timeout, f"{dag_id} {run_id} done")
        return self.run(dag_id, run_id)

    def clear(self, dag_id: str, run_id: str) -> list[dict]:
        body = {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True}
        return self.api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)["task_instances"]

    def asset_events(self, dag_id: str) -> list[dict]:
        path = f"/api/v2/assets/events?source_dag_id={dag_id}&order_by=timestamp&limit=100"
        return self.api("GET", path)["asset_events"]

    def wait_until(self, check, timeout: float, what: str, every: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if check():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for: {what}\n{self.diagnosis()}")
            time.sleep(every)

    # --- what happened -------------------------------------------------------------------------
    def service_log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def task_logs(self) -> dict[str, str]:
        logs = self.home / "logs"
        return {str(p.relative_to(logs)): p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()}

    def diagnosis(self) -> str:
        tails = [f"--- {n} ---\n{self.service_log(n)[-1500:]}" for n in SERVICES]
        tasks = [f"--- {k} ---\n{v[-2000:]}" for k, v in sorted(self.task_logs().items())[-4:]]
        return "\n".join(tails + tasks)

    def listening_sockets(self) -> list[tuple[int, str, int]]:
        """(pid, address, port) of every listening TCP socket held by this deployment's processes."""
        listening: dict[str, tuple[str, int]] = {}
        for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] != "0A":  # LISTEN
                        continue
                    addr, port = fields[1].split(":")
                    listening[fields[9]] = (_address(addr, width), int(port, 16))
        out = []
        for pid in self.own_processes():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in listening:
                    out.append((pid, *listening[target[8:-1]]))
        return sorted(set(out))


def _address(hex_addr: str, width: int) -> str:
    raw = bytes.fromhex(hex_addr)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the service is its session's and group's leader (start_new_session)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
