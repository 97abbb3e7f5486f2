"""EMBER v2's byte-level raw features, re-implemented as EMBER computes them (numpy + regex, a Python
loop over entropy windows): the tests check binfeat's kernels against it, the benchmark times it."""

from __future__ import annotations

import re

import numpy as np

_ALLSTRINGS = re.compile(b"[\x20-\x7f]{5,}")
_PATHS = re.compile(b"c:\\\\", re.IGNORECASE)
_URLS = re.compile(b"https?://", re.IGNORECASE)
_REGISTRY = re.compile(b"HKEY_")
_MZ = re.compile(b"MZ")


def byte_histogram(data: bytes) -> list[int]:
    return np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256).tolist()


def _entropy_bin_counts(block: np.ndarray, window: int = 2048) -> tuple[int, np.ndarray]:
    c = np.bincount(block >> 4, minlength=16)
    p = c.astype(np.float32) / window
    wh = np.where(c)[0]
    h = np.sum(-p[wh] * np.log2(p[wh])) * 2
    hbin = int(h * 2)
    return (15 if hbin == 16 else hbin), c


def byte_entropy_histogram(data: bytes, window: int = 2048, step: int = 1024) -> list[int]:
    output = np.zeros((16, 16), dtype=np.int64)
    a = np.frombuffer(data, dtype=np.uint8)
    if a.shape[0] < window:
        hbin, c = _entropy_bin_counts(a)
        output[hbin, :] += c
    else:
        shape = (*a.shape[:-1], a.shape[-1] - window + 1, window)
        strides = (*a.strides, a.strides[-1])
        blocks = np.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)[::step, :]
        for block in blocks:
            hbin, c = _entropy_bin_counts(block)
            output[hbin, :] += c
    return output.flatten().tolist()


def strings(data: bytes) -> dict:
    allstrings = _ALLSTRINGS.findall(data)
    lengths = [len(s) for s in allstrings]
    avlength = sum(lengths) / len(allstrings) if allstrings else 0
    if allstrings:
        dist = np.bincount([c - 0x20 for c in b"".join(allstrings)], minlength=96)
        printables = int(dist.sum())
        p = dist.astype(np.float32) / printables
        wh = np.where(dist)[0]
        entropy = float(np.sum(-p[wh] * np.log2(p[wh])))
    else:
        dist = np.zeros(96, dtype=np.int64)
        printables = 0
        entropy = 0.0
    return {
        "numstrings": len(allstrings), "avlength": avlength, "printables": printables,
        "printabledist": dist.tolist(), "entropy": entropy,
        "paths": len(_PATHS.findall(data)), "urls": len(_URLS.findall(data)),
        "registry": len(_REGISTRY.findall(data)), "MZ": len(_MZ.findall(data)),
    }
