"""The macho_platform group: the platform and OS versions the image targets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.macho.parse import unpack
from extract.groups.macho.spec import LC_BUILD_VERSION, LC_VERSION_MIN
from extract.groups.shared import onehot, onehot_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

# LC_BUILD_VERSION platforms: macOS, iOS, tvOS, watchOS, bridgeOS, Mac Catalyst, iOS/tvOS/watchOS
# simulators, DriverKit, visionOS, visionOS simulator
PLATFORMS = tuple(range(1, 13))
_PLAT_TYPE = pa.struct([
    ("source", pa.int64()), ("platform", pa.int64()), ("minos", pa.int64()), ("sdk", pa.int64()),
])
_PLAT_DIMS = ["present", *onehot_names("platform", PLATFORMS, "{}"), "minos", "sdk",
              "from_build_version"]


def _version(v: int) -> float:
    """xxxx.yy.zz nibble-encoded version as major + minor/100 (patch dropped)."""
    return (v >> 16) + ((v >> 8) & 0xFF) / 100.0


def _fill_platform(raws: list[dict], out: np.ndarray) -> None:
    zeros = [0.0] * len(_PLAT_DIMS)
    out[:] = np.array([[1.0, *onehot(raw["platform"], PLATFORMS), _version(raw["minos"]), _version(raw["sdk"]),
                        float(raw["source"] == LC_BUILD_VERSION)] if raw["source"] else zeros for raw in raws],
                      dtype=np.float32)


@declare(REGISTRY, name="macho_platform", version=1, formats=["macho"], stage="structure",
         raw_type=_PLAT_TYPE, dim_names=_PLAT_DIMS, fill=_fill_platform)
def macho_platform(parsed: Parsed) -> dict:
    """Target platform and versions from the first LC_BUILD_VERSION, else the first
    LC_VERSION_MIN_* (whose platform is implied by the command). ``source`` is that command's number
    (0: none); minos and sdk stay nibble-encoded (xxxx.yy.zz). Vector: presence, one-hot platform,
    minos and sdk as major + minor/100, whether it came from LC_BUILD_VERSION.
    """
    fallback = {"source": 0, "platform": 0, "minos": 0, "sdk": 0}
    for cmd, off, size in parsed.extra["cmds"]:
        if cmd == LC_BUILD_VERSION and size >= 24:
            platform, minos, sdk = unpack(parsed, "III", off + 8)
            return {"source": cmd, "platform": platform, "minos": minos, "sdk": sdk}
        if cmd in LC_VERSION_MIN and size >= 16 and not fallback["source"]:
            minos, sdk = unpack(parsed, "II", off + 8)
            fallback = {"source": cmd, "platform": LC_VERSION_MIN[cmd], "minos": minos, "sdk": sdk}
    return fallback
