"""Faults injected into real Spark executors: each Python worker imports this module when
``BINFEAT_TEST_WORKER_PLUGIN`` names it (jobs.warmup), before its first partition.

Triggered by markers in a file's path, so the rest of the job runs untouched:

- ``file-fault``: preparing that one file raises (an unexpected exception for one file);
- ``chunk-fault``: extracting any chunk that holds it raises (an unexpected exception for a chunk);
- ``pause-here``: while ``$BINFEAT_TEST_PAUSE_DIR/armed`` exists, the first attempt to extract a
  chunk holding it claims the flag, writes its process id to ``$BINFEAT_TEST_PAUSE_DIR/pid`` and
  waits to be killed (later attempts find no flag and run normally);
- ``kill-here``: extracting any chunk that holds it kills the extracting process with SIGKILL, on
  every attempt (a process dying for real, not an exception).
"""

from __future__ import annotations

import os
import signal
import time

import extract
from jobs import partition

FILE_FAULT = "file-fault"
CHUNK_FAULT = "chunk-fault"
PAUSE = "pause-here"
KILL = "kill-here"


class InjectedFault(Exception):
    pass


_source = partition.PartitionExtractor.source
_extract_batch = extract.extract_batch


def _faulty_source(self, entry, fetcher, fetched):
    if FILE_FAULT in entry[0]:
        raise InjectedFault("one file's preparation broke")
    return _source(self, entry, fetcher, fetched)


def _faulty_extract_batch(batch, options=None):
    paths = batch.column("path").to_pylist()
    if any(CHUNK_FAULT in p for p in paths):
        raise InjectedFault("the whole chunk broke")
    if any(KILL in p for p in paths):
        os.kill(os.getpid(), signal.SIGKILL)
    pause_dir = os.environ.get("BINFEAT_TEST_PAUSE_DIR")
    if pause_dir and any(PAUSE in p for p in paths):
        flag = os.path.join(pause_dir, "armed")
        try:
            os.rename(flag, flag + ".claimed")  # atomic: exactly one attempt pauses
        except FileNotFoundError:
            pass
        else:
            tmp = os.path.join(pause_dir, "pid.tmp")
            with open(tmp, "w") as f:
                f.write(str(os.getpid()))
            os.replace(tmp, os.path.join(pause_dir, "pid"))
            while True:  # until SIGKILL
                time.sleep(0.5)
    return _extract_batch(batch, options)


partition.PartitionExtractor.source = _faulty_source
extract.extract_batch = _faulty_extract_batch
