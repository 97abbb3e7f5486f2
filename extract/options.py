"""The extractor's per-file limits and knobs, validated when made (a bad value fails before any
file is read)."""

from __future__ import annotations

from dataclasses import dataclass, field

from extract.schemes import get as get_scheme


@dataclass(frozen=True)
class ExtractOptions:
    """Per-file limits and knobs. Defaults suit a corpus of executables on a laptop or a cluster."""

    parse_timeout_s: float = 30.0  # wall-clock limit on one file's structural parse
    memory_limit_mb: int = 2048  # address space one parse may take, above the warm worker's own
    max_structural_bytes: int = 512 << 20  # larger files: byte-level groups only, status partial
    isolate: bool = True  # False: parse in-process (faster to debug; a parser crash kills the caller)
    chunk_bytes: int = 8 << 20  # streaming chunk (a multiple of 1024)
    whole_read_bytes: int = 64 << 20  # files up to this size are read in one go
    # opt-in: TLSH (~175 MB/s) and ssdeep (~375 MB/s) would dominate the per-file cost
    fuzzy_hashes: tuple[str, ...] = ()  # subset of ("tlsh", "ssdeep")
    worker_preload: tuple[str, ...] = field(default=())  # modules the worker imports (custom parsers)
    scheme: str = "binfeat"  # the vector: "binfeat" (every group's own) or "ember2" (EMBER v2's 2,381)
    groups: tuple[str, ...] | None = None  # compute only these feature groups (None: every group)

    def __post_init__(self) -> None:
        if self.parse_timeout_s <= 0:
            raise ValueError(f"parse_timeout_s must be > 0, got {self.parse_timeout_s}")
        if self.memory_limit_mb < 256:
            raise ValueError(f"memory_limit_mb must be >= 256, got {self.memory_limit_mb}")
        if self.chunk_bytes < 1024 or self.chunk_bytes % 1024:
            raise ValueError(f"chunk_bytes must be a positive multiple of 1024, got {self.chunk_bytes}")
        unknown = set(self.fuzzy_hashes) - {"tlsh", "ssdeep"}
        if unknown:
            raise ValueError(f"unknown fuzzy hashes {sorted(unknown)}: choose from tlsh, ssdeep")
        if self.groups is not None:
            object.__setattr__(self, "groups", tuple(self.groups))
        get_scheme(self.scheme, self.groups)  # an unknown scheme or group, or a selection it cannot use
