"""Helpers shared by the Spark job tests: crafted trees, row comparison, free ports, subprocess env."""

from __future__ import annotations

import math
import os
import random
import shutil
import site
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ELF_LIB = "/usr/lib/x86_64-linux-gnu/libz.so.1"  # a real shared library, any Debian has it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_python(tmp: Path) -> Path:
    """A venv seeing the project venv's third-party packages but not binfeat itself."""
    venv = tmp / "bare-venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    site_dir = next(venv.glob("lib/python*/site-packages"))
    deps = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    (site_dir / "_project_deps.pth").write_text("\n".join(deps) + "\n")
    return venv / "bin" / "python"


def base_python() -> str:
    return os.path.join(sys.base_prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")


def child_env(**extra: str) -> dict[str, str]:
    """Environment for spawned jobs: venv first on PATH, loopback Spark, no inherited PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_", "AWS_"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env.update(extra)
    return env


def craft_tree(root: Path) -> dict[str, Path]:
    """A small tree with every kind of input the job must survive; returns name -> path.

    Regular files: empty, random bytes, text, a copy of /bin/ls, a duplicate of that copy, a real
    ELF shared library, a fake PE (MZ + junk) in a sub-directory. Specials: a FIFO, a symlink to
    the ls copy (followed: counted once), a dangling symlink, a symlink loop back to the root.
    """
    rng = random.Random(1234)
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "empty": root / "empty",
        "random": root / "random.bin",
        "text": root / "sub" / "notes.txt",
        "ls": root / "ls",
        "ls_dup": root / "sub" / "ls-copy",
        "elf_lib": root / "sub" / "deeper" / "libz.so.1",
        "fake_pe": root / "sub" / "fake.exe",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(rng.randbytes(6000))
    files["text"].write_text("hello binfeat\n" * 50)
    shutil.copyfile("/bin/ls", files["ls"])
    shutil.copyfile("/bin/ls", files["ls_dup"])
    shutil.copyfile(os.path.realpath(ELF_LIB), files["elf_lib"])
    files["fake_pe"].write_bytes(b"MZ" + rng.randbytes(3000))
    specials = {
        "fifo": root / "pipe",
        "link_ls": root / "sub" / "link-to-ls",
        "dangling": root / "dangling",
        "loop": root / "sub" / "loop",
    }
    os.mkfifo(specials["fifo"])
    specials["link_ls"].symlink_to(files["ls"])
    specials["dangling"].symlink_to(root / "does-not-exist")
    specials["loop"].symlink_to(root)
    return {**files, **specials}


def sample_corpus(limit: int) -> list[Path] | None:
    """Up to ``limit`` files of the small sample corpus (by its manifest), or None when absent."""
    from jobs.inputs import InputError, read_manifest

    base = Path(os.environ.get("BINFEAT_CORPUS") or REPO / "corpus" / "small")
    manifest = base / "manifest.jsonl"
    if not manifest.is_file():
        return None
    try:
        entries = read_manifest(str(manifest))
    except InputError:
        return None
    paths = sorted(Path(f.path) for f in entries if os.path.isfile(f.path) and f.size <= 8 * 1024 * 1024)
    if not paths:
        return None
    step = max(1, len(paths) // limit)  # spread over the corpus
    return paths[::step][:limit]


def _norm(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def rows_by_path(table: pa.Table, *, drop: tuple[str, ...] = ()) -> dict[str, dict]:
    """Rows keyed by path, NaN made comparable, ``drop`` columns removed."""
    out = {}
    for row in table.to_pylist():
        key = row["path"]
        out[key] = {k: _norm(v) for k, v in row.items() if k not in drop}
    return out


def read_output(path: str | Path) -> pa.Table:
    return pq.read_table(str(path))
