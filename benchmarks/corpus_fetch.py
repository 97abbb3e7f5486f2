"""Downloads for the sample corpus: Debian packages (any architecture) and PyPI wheels (any platform).

Both go through the registries' own clients with private state, so the machine's package state is
never touched: apt runs with its own sources, lists, cache and an empty dpkg status; pip runs
isolated from the user's configuration (local wheel folders there would change what gets picked).
Everything lands in a cache outside the repository and is reused; a pin the registry no longer
has falls back to the current version, recorded in the cache so later runs stay offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_MIRROR = "http://deb.debian.org/debian"  # override with $BINFEAT_DEBIAN_MIRROR
DEBIAN_SUITE = "bookworm"
PYPI_INDEX = "https://pypi.org/simple"


class CorpusError(RuntimeError):
    """A build step failed; the message is one line meant for the user."""


class RegistryUnreachable(CorpusError):
    """A package registry could not be reached (offline machine, firewall)."""


@dataclass(frozen=True)
class Pin:
    """One pinned package; `take` maps a profile to how many files to select from it."""

    registry: str  # debian | pypi
    name: str
    version: str
    arch: str = "all"  # debian architecture
    platform: str = "any"  # pip --platform
    python: str = "3.11"
    take: dict[str, int] = field(default_factory=dict)
    select: str = "exec"  # exec | java-class
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    slices: bool = False  # also add the thin slices of selected fat Mach-O files
    as_zip: dict[str, int] = field(default_factory=dict)  # add the wheel itself as a zip sample

    @property
    def key(self) -> str:
        if self.registry == "debian":
            return f"debian:{self.name}:{self.arch}"
        return f"pypi:{self.name}:{self.platform}:py{self.python}"

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version} ({self.arch})" if self.registry == "debian" else (
            f"{self.name}=={self.version} ({self.platform}, py{self.python})"
        )

    def used_in(self, profile: str) -> bool:
        return self.take.get(profile, 0) > 0 or self.as_zip.get(profile, 0) > 0


@dataclass(frozen=True)
class Fetched:
    pin: Pin
    path: Path  # unpacked directory (debian) or wheel file (pypi)
    version: str
    warning: str | None


def _run(argv: list[str], *, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise CorpusError(f"{argv[0]} is not installed (needed to fetch packages)") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(f"{' '.join(argv[:3])} timed out after {timeout:.0f}s") from exc


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "W: Failed", "ERROR:", "error:"))]
    line = errors[0] if errors else (lines or ["no output"])[-1]
    return line if len(line) <= 200 else line[:197] + "..."


class Fetcher:
    """Fetches pins into `cache`; `warn` receives one line per fallback."""

    def __init__(self, cache: Path, warn: Callable[[str], None],
                 progress: Callable[[str], None] | None = None) -> None:
        self.cache = cache
        self.warn = warn
        self.progress = progress or (lambda _msg: None)
        self.debs = cache / "debian" / "debs"
        self.unpacked = cache / "debian" / "unpacked"
        self.apt = cache / "debian" / "apt"
        self.wheels = cache / "pypi"
        self.resolved_file = cache / "resolved.json"
        self._lock = threading.Lock()
        self._resolved: dict[str, dict[str, str]] = (
            json.loads(self.resolved_file.read_text()) if self.resolved_file.exists() else {}
        )
        self._updated = False

    # -- bookkeeping ---------------------------------------------------------------------------
    def _record(self, pin: Pin, path: Path, version: str, warning: str) -> None:
        with self._lock:
            self._resolved[pin.key + "=" + pin.version] = {
                "path": str(path.relative_to(self.cache)), "version": version, "warning": warning,
            }
            tmp = self.resolved_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._resolved, indent=1, sort_keys=True))
            tmp.replace(self.resolved_file)

    def _resolved_for(self, pin: Pin) -> tuple[Path, str, str] | None:
        rec = self._resolved.get(pin.key + "=" + pin.version)
        if rec and (self.cache / rec["path"]).exists():
            return self.cache / rec["path"], rec["version"], rec["warning"]
        return None

    def fetch(self, pins: list[Pin]) -> dict[str, Fetched]:
        """Fetch (or find in the cache) every pin; returns Fetched by pin key."""
        for d in (self.debs, self.unpacked, self.apt, self.wheels):
            d.mkdir(parents=True, exist_ok=True)
        debs = [p for p in pins if p.registry == "debian"]
        wheels = [p for p in pins if p.registry == "pypi"]
        out: dict[str, Fetched] = {}
        groups: dict[tuple[str, str], list[Pin]] = {}
        for p in wheels:
            if self._cached_wheel(p) is None:
                groups.setdefault((p.platform, p.python), []).append(p)
        n_debs = sum(not (self.debs / self._deb_name(p, p.version)).exists() and self._resolved_for(p) is None
                     for p in debs)
        n_wheels = sum(len(g) for g in groups.values())
        if n_debs or n_wheels:
            self.progress(f"downloading {n_debs} Debian packages and {n_wheels} wheels into {self.cache}")
        if groups:
            self._check_pypi()
        with ThreadPoolExecutor(max_workers=4) as pool:
            deb_job = pool.submit(self._fetch_debs, debs)
            list(pool.map(self._prefetch_wheels, groups.values()))
            wheel_jobs = [pool.submit(self._fetch_wheel, p) for p in wheels]
            for job in [deb_job, *wheel_jobs]:
                for f in job.result() if job is deb_job else [job.result()]:
                    out[f.pin.key] = f
        return out

    # -- Debian --------------------------------------------------------------------------------
    def _apt_options(self) -> list[str]:
        arches = ["amd64", "i386", "arm64", "armhf", "s390x", "ppc64el", "mips64el"]
        sources = self.apt / "sources.list"
        empty = self.apt / "empty.d"
        (self.apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        empty.mkdir(parents=True, exist_ok=True)
        line = f"deb {os.environ.get('BINFEAT_DEBIAN_MIRROR', DEBIAN_MIRROR)} {DEBIAN_SUITE} main\n"
        if not sources.exists() or sources.read_text() != line:
            sources.write_text(line)
        opts = {
            "APT::Architecture": arches[0],
            "Dir::State::Lists": str(self.apt / "lists"),
            "Dir::State::status": "/dev/null",
            "Dir::Cache": str(self.apt / "cache"),
            "Dir::Etc::sourcelist": str(sources),
            "Dir::Etc::sourceparts": str(empty),
            "Dir::Etc::preferences": "/dev/null",
            "Dir::Etc::preferencesparts": str(empty),
            "Acquire::Languages": "none",
            "Acquire::Retries": "1",
            "Acquire::http::Timeout": "20",
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"  # the private dirs are not writable by _apt
        argv = [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]
        for a in arches:
            argv += ["-o", f"APT::Architectures::={a}"]
        return argv

    def _apt_update(self) -> None:
        if self._updated:
            return
        res = _run(["apt-get", *self._apt_options(), "-q", "update"], timeout=900)
        out = res.stdout + res.stderr
        lists = list((self.apt / "lists").glob("*_Packages*"))
        if not lists or re.search(r"^(W|E): Failed to fetch .*Release", out, re.M):
            why = _last_error(out)
            raise RegistryUnreachable(f"cannot reach the Debian archive: {why}")
        self._updated = True

    @staticmethod
    def _deb_name(pin: Pin, version: str) -> str:
        return f"{pin.name}_{version.replace(':', '%3a')}_{pin.arch}.deb"

    def _target(self, pin: Pin, version: str | None) -> str:
        qual = pin.name if pin.arch == "all" else f"{pin.name}:{pin.arch}"
        return f"{qual}={version}" if version else qual

    def _fetch_debs(self, pins: list[Pin]) -> list[Fetched]:
        done: list[tuple[Pin, Path, str, str | None]] = []
        missing: list[Pin] = []
        for pin in pins:
            deb = self.debs / self._deb_name(pin, pin.version)
            if deb.exists():
                done.append((pin, deb, pin.version, None))
            elif (hit := self._resolved_for(pin)) is not None:
                done.append((pin, *hit))
            else:
                missing.append(pin)
        if missing:
            self._apt_update()
            _run(["apt-get", *self._apt_options(), "-q", "download",
              *[self._target(p, p.version) for p in missing]], cwd=self.debs)
            for pin in missing:
                deb = self.debs / self._deb_name(pin, pin.version)
                if deb.exists():
                    done.append((pin, deb, pin.version, None))
                else:
                    done.append((pin, *self._deb_fallback(pin)))
        return [Fetched(pin, self._unpack(deb), version, warning) for pin, deb, version, warning in done]

    def _download_one(self, target: str) -> tuple[Path | None, str]:
        """apt-get download one package into the cache; (path or None, apt's output)."""
        with tempfile.TemporaryDirectory(dir=self.debs) as tmp:
            res = _run(["apt-get", *self._apt_options(), "-q", "download", target], cwd=Path(tmp))
            got = sorted(Path(tmp).glob("*.deb"))
            if res.returncode != 0 or len(got) != 1:
                return None, res.stdout + res.stderr
            deb = self.debs / got[0].name
            shutil.move(str(got[0]), deb)
            return deb, ""

    def _deb_fallback(self, pin: Pin) -> tuple[Path, str, str | None]:
        deb, out = self._download_one(self._target(pin, pin.version))
        if deb is not None:
            if deb.name != self._deb_name(pin, pin.version):
                raise CorpusError(f"pin {pin.spec}: apt returned {deb.name} (wrong architecture in the pin?)")
            return deb, pin.version, None
        why = _last_error(out)
        deb, out = self._download_one(self._target(pin, None))
        if deb is None:
            raise CorpusError(f"apt-get download {pin.spec} failed: {_last_error(out)}")
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
        warning = f"pinned {pin.spec} unavailable ({why}); fell back to {version}"
        self.warn(warning)
        self._record(pin, deb, version, warning)
        return deb, version, warning

    def _unpack(self, deb: Path) -> Path:
        dest = self.unpacked / deb.stem
        if dest.exists():
            return dest
        tmp = Path(tempfile.mkdtemp(dir=self.unpacked, prefix=".tmp-"))
        res = _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CorpusError(f"dpkg-deb -x {deb.name} failed: {_last_error(res.stderr)}")
        tmp.rename(dest)
        return dest

    # -- PyPI ----------------------------------------------------------------------------------
    def _pip(self, pin: Pin, requirements: list[str], dest: Path) -> subprocess.CompletedProcess:
        index = os.environ.get("BINFEAT_PIP_INDEX_URL", PYPI_INDEX)
        argv = [sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "-q",
                "--no-deps", "--only-binary=:all:", "--index-url", index, "--timeout", "20", "--retries", "1",
                "--platform", pin.platform, "--python-version", pin.python, "-d", str(dest)]
        if pin.python.startswith("2"):
            argv += ["--implementation", "cp", "--abi", "cp27m"]
        cert = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE")
        if cert:
            argv += ["--cert", cert]
        return _run([*argv, *requirements])

    def _check_pypi(self) -> None:
        index = os.environ.get("BINFEAT_PIP_INDEX_URL", PYPI_INDEX)
        try:
            with urllib.request.urlopen(index.rstrip("/") + "/pip/", timeout=20):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryUnreachable(f"cannot reach PyPI ({index}): {exc}") from exc

    def _wheel_dir(self, pin: Pin) -> Path:
        return self.wheels / f"{pin.name}-{pin.version}-{pin.platform}-py{pin.python}"

    def _cached_wheel(self, pin: Pin) -> Fetched | None:
        found = sorted(self._wheel_dir(pin).glob("*.whl"))
        if found:
            return Fetched(pin, found[0], pin.version, None)
        if (hit := self._resolved_for(pin)) is not None:
            return Fetched(pin, *hit)
        return None

    def _prefetch_wheels(self, pins: list[Pin]) -> None:
        """One pip run for all pinned wheels of one platform (pip start-up dominates otherwise);
        whatever it could not get is retried one by one, with fallback, by _fetch_wheel."""
        tmp = Path(tempfile.mkdtemp(dir=self.wheels, prefix=".tmp-"))
        try:
            self._pip(pins[0], [f"{p.name}=={p.version}" for p in pins], tmp)
            by_name = {(_norm(p.name), p.version): p for p in pins}
            for whl in sorted(tmp.glob("*.whl")):
                name, version = whl.name.split("-")[:2]
                pin = by_name.get((_norm(name), version))
                if pin is not None:
                    dest = self._wheel_dir(pin)
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(whl), dest / whl.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _fetch_wheel(self, pin: Pin) -> Fetched:
        dest = self._wheel_dir(pin)
        if (hit := self._cached_wheel(pin)) is not None:
            return hit
        tmp = Path(tempfile.mkdtemp(dir=self.wheels, prefix=".tmp-"))
        try:
            res = self._pip(pin, [f"{pin.name}=={pin.version}"], tmp)
            got = sorted(tmp.glob("*.whl"))
            if res.returncode == 0 and len(got) == 1:
                dest.mkdir(parents=True, exist_ok=True)
                target = dest / got[0].name
                shutil.move(str(got[0]), target)
                return Fetched(pin, target, pin.version, None)
            why = _last_error(res.stderr)
            res = self._pip(pin, [pin.name], tmp)
            got = sorted(tmp.glob("*.whl"))
            if res.returncode != 0 or len(got) != 1:
                raise CorpusError(f"pip download {pin.spec} failed: {_last_error(res.stderr)}")
            version = got[0].name.split("-")[1]
            dest = self.wheels / f"{pin.name}-{version}-{pin.platform}-py{pin.python}"
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / got[0].name
            shutil.move(str(got[0]), target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        warning = f"pinned {pin.spec} unavailable ({why}); fell back to {version}"
        self.warn(warning)
        self._record(pin, target, version, warning)
        return Fetched(pin, target, version, warning)
