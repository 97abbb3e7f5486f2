"""The sample corpus's generated non-executables: seeded random and zero-filled data, PDFs, tar and zip.

Deterministic: seeded ``random.Random``, fixed archive metadata, no compression (so no dependence on
the zlib version).
"""

from __future__ import annotations

import io
import random
import tarfile
import zipfile

from benchmarks.corpus_entry import GENERATED, Collection, Entry


def make_pdf(seed: int) -> bytes:
    """A small valid PDF (one page of seeded text), with a correct xref table."""
    rng = random.Random(seed)
    words = ["binfeat", "sample", "corpus", "feature", "entropy", "section", "header", "import", "string"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def make_tar(members: list[tuple[str, bytes]]) -> bytes:
    """Uncompressed ustar archive with fixed metadata (mtime 0, root:root, 0644)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name[-99:])
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(members: list[tuple[str, bytes]]) -> bytes:
    """Stored (uncompressed, so independent of the zlib version) zip with a fixed date."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def generate(cfg: dict, seed: int, texts: list[Entry], coll: Collection) -> list[Entry]:
    """Seeded random and zero-filled data, PDFs, tar and zip archives."""
    rng = random.Random(f"{seed}:generated")
    out: list[Entry] = []
    ver = f"seed={seed}"

    def add(data: bytes, kind: str, origin: str) -> None:
        e = Entry(data, kind, GENERATED, ver, origin)
        if coll.add(e):
            out.append(e)

    sizes = [1, 16, 512, 4096, 65536, 1 << 20]
    for i in range(cfg.get("random", 0)):
        n = sizes[i % len(sizes)] + rng.randrange(1024)
        add(random.Random(f"{seed}:random:{i}").randbytes(n), "random", f"random/{i}:{n}")
    for i in range(cfg.get("zero", 0)):
        n = sizes[i % len(sizes)] * (1 + i // len(sizes))
        add(bytes(n), "zero", f"zero/{i}:{n}")
    for i in range(cfg.get("pdf", 0)):
        add(make_pdf(rng.randrange(1 << 32)), "pdf", f"pdf/{i}")
    members = [(e.origin, e.data) for e in sorted(texts, key=lambda e: e.sha256)]
    if not members:
        members = [(f"lorem{i}.txt", (b"lorem ipsum %d\n" % i) * 50) for i in range(4)]
    for i in range(cfg.get("tar", 0)):
        chosen = random.Random(f"{seed}:tar:{i}").sample(members, min(len(members), 1 + i % 4))
        add(make_tar(chosen), "tar", f"tar/{i}")
    for i in range(cfg.get("zip", 0)):
        chosen = random.Random(f"{seed}:zip:{i}").sample(members, min(len(members), 1 + i % 4))
        add(make_zip(chosen), "zip", f"zip/{i}")
    return out
