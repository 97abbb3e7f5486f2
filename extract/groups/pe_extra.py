"""PE groups EMBER lacks: .NET (COR20 header + metadata root + #~ row counts), Rich header and
Authenticode (the overlay group is in :mod:`extract.groups.pe_overlay`).

LIEF has no .NET support, so the CLR header (data directory 14), the metadata root ("BSJB"), its
stream headers and the #~/#- table-stream header are read here with struct, every read
bounds-checked against the file.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pyarrow as pa

from extract.groups.pe_parse import DIR_CLR, DIR_SECURITY, data_dir, rva_to_offset
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed, items
from extract.registry import REGISTRY, declare
from extract.text import clean

# ---------------------------------------------------------------------------------------------
# pe_dotnet

MAX_STREAMS = 64
STREAM_NAME_MAX = 32  # ECMA-335 II.24.2.2
COR20_SIZE = 72
METADATA_MAGIC = 0x424A5342  # "BSJB"
COMIMAGE = {"il_only": 0x1, "requires_32bit": 0x2, "il_library": 0x4, "strong_name_signed": 0x8,
            "native_entrypoint": 0x10, "track_debug_data": 0x10000, "prefers_32bit": 0x20000}
TABLES = {"module": 0x00, "type_ref": 0x01, "type_def": 0x02, "field": 0x04, "method_def": 0x06,
          "param": 0x08, "member_ref": 0x0A, "assembly": 0x20, "assembly_ref": 0x23}
KNOWN_STREAMS = ("#~", "#-", "#Strings", "#US", "#GUID", "#Blob", "#Pdb", "#JTD")

DOTNET_TYPE = pa.struct(
    [("present", pa.bool_()), ("cb", pa.int64()), ("runtime_major", pa.int64()),
     ("runtime_minor", pa.int64()), ("flags", pa.int64())]
    + [(k, pa.bool_()) for k in COMIMAGE]
    + [("entry_point_token", pa.int64()), ("metadata_rva", pa.int64()), ("metadata_size", pa.int64()),
       ("resources_size", pa.int64()), ("strong_name_size", pa.int64()), ("vtable_fixups_size", pa.int64()),
       ("metadata_major", pa.int64()), ("metadata_minor", pa.int64()), ("metadata_version", pa.string()),
       ("streams", pa.list_(pa.struct([("name", pa.string()), ("offset", pa.int64()),
                                       ("size", pa.int64())]))),
       ("tables_valid", pa.decimal128(20, 0)), ("tables_present", pa.int64()),
       ("table_rows", pa.struct([(k, pa.int64()) for k in TABLES])),
       ("problem", pa.string())]
)
_DOTNET_SCALARS = ("present", "runtime_major", "runtime_minor", *COMIMAGE)
DOTNET_DIMS = (
    list(_DOTNET_SCALARS)
    + ["has_entry_point_token", "entry_point_table", "metadata_size", "resources_size", "strong_name_size",
       "vtable_fixups_size", "metadata_major", "metadata_minor", "streams"]
    + [f"stream={s}" for s in KNOWN_STREAMS] + ["streams_other", "tables_present"]
    + [f"rows_{k}" for k in TABLES] + hashed_dim_names("metadata_version_hash", 8)
)


_DOTNET_FIELDS = tuple(DOTNET_TYPE.names)  # (StructType.names builds its list anew on each call)


def _dotnet_empty() -> dict:
    out: dict = dict.fromkeys(_DOTNET_FIELDS)
    out.update({"present": False, "streams": [], "table_rows": None})
    return out


def _num(v) -> float:
    return float(v) if v is not None else 0.0


def _fill_dotnet(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    rows = []
    for i, raw in enumerate(raws):
        names = [s["name"] for s in raw["streams"] or []]
        token = raw["entry_point_token"] or 0
        rows_ = raw["table_rows"] or {}
        row = [_num(raw[k]) for k in _DOTNET_SCALARS]
        row += [float(token != 0), float(token >> 24), _num(raw["metadata_size"]), _num(raw["resources_size"]),
                _num(raw["strong_name_size"]), _num(raw["vtable_fixups_size"]), _num(raw["metadata_major"]),
                _num(raw["metadata_minor"]), float(len(names))]
        row += [float(names.count(s)) for s in KNOWN_STREAMS]
        row += [float(sum(1 for n in names if n not in KNOWN_STREAMS)), _num(raw["tables_present"])]
        row += [_num(rows_.get(k)) for k in TABLES]
        rows.append(row)
        if raw["metadata_version"]:
            bins.add(i, len(row), [raw["metadata_version"]], 8)
    out[:, :out.shape[1] - 8] = np.array(rows, dtype=np.float32)
    bins.write()


def _read_streams(buf: bytes, root: int, end: int, pos: int, count: int, out: dict) -> None:
    """Stream headers: offset, size, NUL-terminated name padded to 4 bytes (at most 32 bytes)."""
    streams = []
    for _ in range(min(count, MAX_STREAMS)):
        if pos + 8 > end:
            out["problem"] = "stream headers run past the metadata"
            break
        s_off, s_size = struct.unpack_from("<II", buf, pos)
        raw_name = buf[pos + 8:min(pos + 8 + STREAM_NAME_MAX, end)]
        nul = raw_name.find(b"\x00")
        if nul < 0:
            out["problem"] = "stream name without terminator"
            break
        streams.append({"name": clean(raw_name[:nul], STREAM_NAME_MAX), "offset": s_off, "size": s_size})
        pos += 8 + ((nul + 4) & ~3)
    out["streams"] = streams
    for s in streams:
        if s["name"] in ("#~", "#-"):
            _read_tables(buf, root + s["offset"], min(root + s["offset"] + s["size"], end), out)
            break


def _read_tables(buf: bytes, pos: int, end: int, out: dict) -> None:
    """#~ header: reserved u32, major u8, minor u8, heap sizes u8, reserved u8, valid u64, sorted u64,
    then one u32 row count per set bit of valid (in table order)."""
    if pos < 0 or pos + 24 > end:
        out["problem"] = "table stream header outside the metadata"
        return
    (valid,) = struct.unpack_from("<Q", buf, pos + 8)
    present = bin(valid).count("1")
    out["tables_valid"], out["tables_present"] = valid, present
    rows_at = pos + 24
    rows = {}
    for name, t in TABLES.items():
        idx = bin(valid & ((1 << t) - 1)).count("1")
        if not valid >> t & 1:
            rows[name] = 0
        elif rows_at + 4 * idx + 4 <= end:
            rows[name] = struct.unpack_from("<I", buf, rows_at + 4 * idx)[0]
        else:
            rows[name] = None
            out["problem"] = "row counts run past the table stream"
    out["table_rows"] = rows


def _read_metadata(buf: bytes, off: int, size: int, out: dict) -> None:
    end = off + size
    if size < 16 or struct.unpack_from("<I", buf, off)[0] != METADATA_MAGIC:
        out["problem"] = "no BSJB metadata root at the CLR header's metadata RVA"
        return
    major, minor, _, vlen = struct.unpack_from("<HHII", buf, off + 4)
    out["metadata_major"], out["metadata_minor"] = major, minor
    vstart = off + 16
    if vlen > 256 or vstart + vlen + 4 > end:
        out["problem"] = f"metadata version length {vlen} is absurd or past the metadata"
        return
    out["metadata_version"] = clean(buf[vstart:vstart + vlen].split(b"\x00", 1)[0], 256)
    pos = vstart + ((vlen + 3) & ~3)
    if pos + 4 > end:
        out["problem"] = "metadata root ends before its stream count"
        return
    _, n_streams = struct.unpack_from("<HH", buf, pos)
    _read_streams(buf, off, end, pos + 4, n_streams, out)


@declare(REGISTRY, name="pe_dotnet", version=1, formats=["pe"], stage="structure", raw_type=DOTNET_TYPE,
         dim_names=DOTNET_DIMS, fill=_fill_dotnet)
def pe_dotnet(parsed: Parsed) -> dict:
    """.NET CLR header (COR20): runtime version, flags, entry token, metadata root version string,
    stream names, and row counts of key metadata tables read from the #~ (or #-) stream header.

    ``present`` is False for native PEs. Fields that could not be read stay null and ``problem``
    says where reading stopped. Caps: 64 streams, stream names 32 bytes, version string 256 chars.
    """
    out = _dotnet_empty()
    b, buf = parsed.binary, parsed.data
    rva, size = data_dir(parsed, DIR_CLR)
    if rva == 0 or size == 0:
        return out
    out["present"] = True
    off = rva_to_offset(b, rva, COR20_SIZE, len(buf))
    if off is None:
        out["problem"] = "CLR header RVA outside the file"
        return out
    cb, rt_major, rt_minor, md_rva, md_size, flags, token = struct.unpack_from("<IHHIIII", buf, off)
    res_size, sn_size, vt_size = (struct.unpack_from("<I", buf, off + o)[0] for o in (28, 36, 52))
    out.update({"cb": cb, "runtime_major": rt_major, "runtime_minor": rt_minor, "flags": flags,
                "entry_point_token": token, "metadata_rva": md_rva, "metadata_size": md_size,
                "resources_size": res_size, "strong_name_size": sn_size, "vtable_fixups_size": vt_size})
    out.update({k: bool(flags & bit) for k, bit in COMIMAGE.items()})
    md_off = rva_to_offset(b, md_rva, min(md_size, 16), len(buf))
    if md_off is None:
        out["problem"] = "metadata RVA outside the file"
        return out
    _read_metadata(buf, md_off, min(md_size, len(buf) - md_off), out)
    return out


# ---------------------------------------------------------------------------------------------
# pe_rich

MAX_RICH = 1024
RICH_HASH_DIMS = 64
DANS, RICH = 0x536E6144, 0x68636952
RICH_TYPE = pa.struct([
    ("present", pa.bool_()), ("key", pa.int64()), ("offset", pa.int64()), ("checksum_valid", pa.bool_()),
    ("entries", pa.list_(pa.struct([("product_id", pa.int64()), ("build_id", pa.int64()),
                                    ("count", pa.int64())]))),
])
RICH_DIMS = ["present", "entries", "key", "checksum_valid", "log_total_count",
             *hashed_dim_names("comp_id_hash", RICH_HASH_DIMS)]


def _fill_rich(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    heads = []
    for i, raw in enumerate(raws):
        entries = raw["entries"]
        heads.append([float(raw["present"]), float(len(entries)), float(raw["key"] or 0),
                      float(bool(raw["checksum_valid"])), math.log1p(sum(e["count"] for e in entries))])
        bins.add(i, 5, [f"{e['product_id']:04x}.{e['build_id']:04x}" for e in entries], RICH_HASH_DIMS,
                 [float(math.log1p(e["count"])) for e in entries])
    out[:, :5] = np.array(heads, dtype=np.float32)
    bins.write()


def _rol(v: int, n: int) -> int:
    n &= 31
    return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF if n else v


def _rich_checksum(buf: bytes, dans: int, pairs: list[tuple[int, int]]) -> int:
    """The linker's checksum: the DanS offset, plus each DOS-header byte (e_lfanew excluded)
    rotated left by its offset, plus each comp.id rotated left by its count (all mod 2**32)."""
    b = np.frombuffer(buf, dtype=np.uint8, count=dans).astype(np.uint64)
    n = np.arange(dans, dtype=np.uint64) & np.uint64(31)
    rot = ((b << n) & np.uint64(0xFFFFFFFF)) | (b >> ((np.uint64(32) - n) & np.uint64(31)))
    rot[0x3C:0x40] = 0
    csum = dans + int(rot.sum())
    for comp_id, count in pairs:
        csum += _rol(comp_id, count)
    return csum & 0xFFFFFFFF


def _parse_rich(buf: bytes, lfanew: int) -> dict | None:
    """Find "Rich" between 0x80 and the optional header (as pefile), then search back for "DanS"
    (XORed with the key, 4-byte aligned, at most 1,024 entries before "Rich")."""
    end = min(lfanew + 24, len(buf))
    rich = buf.find(b"Rich", 0x80, end)
    if rich < 0 or rich + 8 > len(buf):
        return None
    (key,) = struct.unpack_from("<I", buf, rich + 4)
    needle = struct.pack("<I", DANS ^ key)
    lo = max(0x40, rich - 16 - 8 * MAX_RICH)
    dans = buf.rfind(needle, lo, rich)
    while dans >= 0 and (rich - dans) % 8:
        dans = buf.rfind(needle, lo, dans + 3)
    if dans < 0 or rich - dans < 16:
        return None
    words = struct.unpack_from(f"<{(rich - dans - 16) // 4}I", buf, dans + 16)
    pairs = [(words[i] ^ key, words[i + 1] ^ key) for i in range(0, len(words), 2)]
    entries = [{"product_id": c >> 16, "build_id": c & 0xFFFF, "count": n} for c, n in pairs]
    return {"present": True, "key": key, "offset": dans,
            "checksum_valid": _rich_checksum(buf, dans, pairs) == key, "entries": entries}


@declare(REGISTRY, name="pe_rich", version=1, formats=["pe"], stage="structure", raw_type=RICH_TYPE,
         dim_names=RICH_DIMS, fill=_fill_rich)
def pe_rich(parsed: Parsed) -> dict:
    """Rich header (MSVC toolchain fingerprint), read from the bytes in file order: XOR key, offset of
    "DanS", whether the key equals the recomputed checksum (edited headers fail), and comp.id
    (product, build) entries with counts. Vector: presence, entry count, key, checksum validity,
    log1p of total count, each comp.id ``"pppp.bbbb"`` hashed with weight log1p(count) into 64 dims.
    Cap: 1,024 entries."""
    lfanew = int(parsed.binary.dos_header.addressof_new_exeheader)
    found = _parse_rich(parsed.data, lfanew)
    return found or {"present": False, "key": None, "offset": None, "checksum_valid": None, "entries": []}


# ---------------------------------------------------------------------------------------------
# pe_authenticode

MAX_NAMES = 16
AUTH_HASH_DIMS = 16
AUTH_TYPE = pa.struct([
    ("present", pa.bool_()), ("dir_offset", pa.int64()), ("dir_size", pa.int64()),
    ("dir_in_file", pa.bool_()),
    ("signatures", pa.int64()), ("certificates", pa.int64()), ("signers", pa.int64()),
    ("signer_issuers", pa.list_(pa.string())), ("signer_subjects", pa.list_(pa.string())),
    ("digest_algorithms", pa.list_(pa.string())),
])
AUTH_DIMS = ["present", "dir_size", "dir_in_file", "signatures", "certificates", "signers",
             *hashed_dim_names("signer_issuer_hash", AUTH_HASH_DIMS)]


_AUTH_NUMS = ("present", "dir_size", "dir_in_file", "signatures", "certificates", "signers")


def _fill_auth(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    n = len(_AUTH_NUMS)
    for i, raw in enumerate(raws):
        bins.add(i, n, list(raw["signer_issuers"]), AUTH_HASH_DIMS)
    out[:, :n] = np.array([[float(raw[k]) for k in _AUTH_NUMS] for raw in raws], dtype=np.float32)
    bins.write()


@declare(REGISTRY, name="pe_authenticode", version=1, formats=["pe"], stage="structure", raw_type=AUTH_TYPE,
         dim_names=AUTH_DIMS, fill=_fill_auth)
def pe_authenticode(parsed: Parsed) -> dict:
    """Security directory (file offset, size, inside the file?) and LIEF's parsed Authenticode
    signatures: counts of signatures, certificates and signers, signer issuer/subject names and
    digest algorithms. The digest is not verified (it would hash the whole file again).
    Caps: 16 names per list, 256 chars each."""
    b = parsed.binary
    off, size = data_dir(parsed, DIR_SECURITY)
    out = {"present": off != 0 and size != 0, "dir_offset": off, "dir_size": size,
           "dir_in_file": off != 0 and size != 0 and off + size <= parsed.size,
           "signatures": 0, "certificates": 0, "signers": 0,
           "signer_issuers": [], "signer_subjects": [], "digest_algorithms": []}
    for sig in items(b.signatures):
        out["signatures"] += 1
        out["certificates"] += len(sig.certificates)
        if len(out["digest_algorithms"]) < MAX_NAMES:
            out["digest_algorithms"].append(str(sig.digest_algorithm).rsplit(".", 1)[-1])
        for signer in items(sig.signers):
            out["signers"] += 1
            if len(out["signer_issuers"]) < MAX_NAMES:
                out["signer_issuers"].append(clean(signer.issuer, 256))
                cert = signer.cert
                out["signer_subjects"].append(clean(cert.subject if cert is not None else "", 256))
    return out
