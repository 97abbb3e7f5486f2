"""Listing INPUT: directories, files, globs, manifests, symlink policy, specials; exact counts."""

from __future__ import annotations

import csv
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.inputs import InputError, InputFile, list_inputs

REGULAR = ["empty", "random", "text", "ls", "ls_dup", "elf_lib", "fake_pe"]


def _paths(files: list[InputFile]) -> list[str]:
    return [f.path for f in files]


def test_directory_follow_symlinks_counts_each_file_once(crafted):
    files = list_inputs(str(crafted["root"]))
    expected = sorted(str(crafted[k]) for k in [*REGULAR, "fifo", "dangling"])
    assert _paths(files) == expected  # link-to-ls folded into ls, the loop cut, sorted
    by_path = {f.path: f for f in files}
    assert by_path[str(crafted["dangling"])].error == "dangling symbolic link"
    assert by_path[str(crafted["fifo"])].error is None  # extract reports FIFOs without blocking
    assert by_path[str(crafted["ls"])].size == os.path.getsize("/bin/ls")
    assert sum(f.error is None for f in files) == 8


def test_directory_without_following_symlinks(crafted):
    files = list_inputs(str(crafted["root"]), follow_symlinks=False)
    expected = sorted(str(crafted[k]) for k in [*REGULAR, "fifo", "dangling", "link_ls", "loop"])
    assert _paths(files) == expected
    errors = {f.path: f.error for f in files if f.error}
    assert errors == {
        str(crafted[k]): "symbolic link not followed (--no-follow-symlinks)"
        for k in ("dangling", "link_ls", "loop")
    }


def test_hard_links_and_symlink_only_names(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    os.link(tmp_path / "d" / "a", tmp_path / "d" / "b")  # same inode: one input, smallest plain name
    (tmp_path / "outside").write_bytes(b"y")
    (tmp_path / "d" / "z-link").symlink_to(tmp_path / "outside")  # only reachable via the link
    files = list_inputs(str(tmp_path / "d"))
    assert _paths(files) == [str(tmp_path / "d" / "a"), str(tmp_path / "d" / "z-link")]


def test_single_file_and_globs(crafted):
    root = crafted["root"]
    assert _paths(list_inputs(str(crafted["ls"]))) == [str(crafted["ls"])]
    assert _paths(list_inputs(str(root / "*.bin"))) == [str(crafted["random"])]
    assert _paths(list_inputs(str(root / "**" / "*.exe"))) == [str(crafted["fake_pe"])]
    assert _paths(list_inputs(str(root / "sub" / "deeper" / "*"))) == [str(crafted["elf_lib"])]
    # overlapping globs of one spec list a file once
    assert len(list_inputs(str(root / "**" / "libz*"))) == 1


def test_relative_spec_gives_absolute_paths(crafted, monkeypatch):
    monkeypatch.chdir(crafted["root"])
    assert _paths(list_inputs("sub/deeper")) == [str(crafted["elf_lib"])]


def _manifest_rows(crafted):
    root = crafted["root"]
    return [
        {"path": os.path.relpath(crafted["ls"], root), "sha256": "ab" * 32, "label": "benign"},
        {"path": str(crafted["fake_pe"]), "sha256": "", "label": "malicious"},
        {"path": "missing.bin", "sha256": None, "label": None},
        {"path": "sub", "label": "a directory"},  # not a file: an error row later, not a crash now
    ]


def _check_manifest(files, crafted):
    root = crafted["root"]
    assert _paths(files) == [
        str(crafted["ls"]),
        str(crafted["fake_pe"]),
        str(root / "missing.bin"),
        str(root / "sub"),
    ]
    assert [f.label for f in files] == ["benign", "malicious", None, "a directory"]
    assert [f.sha256 for f in files] == ["ab" * 32, None, None, None]
    assert files[0].size == os.path.getsize("/bin/ls")
    assert files[2].size == 0


def test_manifest_jsonl(crafted, tmp_path):
    m = crafted["root"] / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in _manifest_rows(crafted)) + "\n")
    try:
        _check_manifest(list_inputs(str(m)), crafted)
    finally:
        m.unlink()


def test_manifest_csv(crafted):
    m = crafted["root"] / "m.csv"
    with open(m, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "sha256", "label"])
        w.writeheader()
        for r in _manifest_rows(crafted):
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    try:
        _check_manifest(list_inputs(str(m)), crafted)
    finally:
        m.unlink()


def test_manifest_parquet_with_size_column(crafted):
    m = crafted["root"] / "m.parquet"
    rows = _manifest_rows(crafted)
    table = pa.table(
        {
            "path": [r["path"] for r in rows],
            "sha256": [r.get("sha256") or None for r in rows],
            "label": [r.get("label") for r in rows],
            "size": [os.path.getsize("/bin/ls"), 3002, 0, 0],
            "ignored": [1, 2, 3, 4],
        }
    )
    pq.write_table(table, m)
    try:
        files = list_inputs(str(m))
        _check_manifest(files, crafted)
        assert files[1].size == 3002
    finally:
        m.unlink()


def test_manifest_suffix_can_be_treated_as_a_file(crafted):
    m = crafted["root"] / "data.csv"
    m.write_text("not,a,manifest\n")
    try:
        assert _paths(list_inputs(str(m), input_type="files")) == [str(m)]
        with pytest.raises(InputError, match="has no 'path' column"):
            list_inputs(str(m))
    finally:
        m.unlink()


def test_unusable_specs(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        list_inputs(str(tmp_path / "nope"))
    with pytest.raises(InputError, match="no files match"):
        list_inputs(str(tmp_path / "*.nothing"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="lists no files"):
        list_inputs(str(tmp_path / "empty.jsonl"))
    assert list_inputs(str(tmp_path / "empty.jsonl"), input_type="files") == [
        InputFile(str(tmp_path / "empty.jsonl"), 1)
    ]


def test_content_addressed_manifest_without_path(tmp_path):
    sha = "ab" * 32
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / sha).write_bytes(b"z" * 7)
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"sha256": sha, "format": "elf"}) + "\n")
    assert list_inputs(str(tmp_path / "manifest.jsonl")) == [
        InputFile(str(tmp_path / "ab" / sha), 7, sha256=sha)
    ]


def test_include_and_exclude_choose_files_of_a_folder(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "ab").mkdir(parents=True)
    (corpus / "cd" / "deep").mkdir(parents=True)
    for rel in ("manifest.jsonl", "README.md", "ab/abc1", "ab/abc2.dll", "cd/deep/x.exe", "cd/notes.md"):
        (corpus / rel).write_bytes(b"z")

    def listed(**kw):
        return [os.path.relpath(f.path, corpus) for f in list_inputs(str(corpus), **kw)]

    everything = ["README.md", "ab/abc1", "ab/abc2.dll", "cd/deep/x.exe", "cd/notes.md", "manifest.jsonl"]
    assert listed() == everything  # a folder means every file in it, manifest and README included
    assert listed(exclude=["manifest.jsonl", "*.md"]) == ["ab/abc1", "ab/abc2.dll", "cd/deep/x.exe"]
    assert listed(include=["*.dll", "*.exe"]) == ["ab/abc2.dll", "cd/deep/x.exe"]  # by name, at any depth
    assert listed(include=["ab/*"]) == ["ab/abc1", "ab/abc2.dll"]  # by path relative to the folder
    assert listed(include=["cd/*"], exclude=["*.md"]) == ["cd/deep/x.exe"]  # '*' crosses '/'
    assert listed(include=["[a]b/abc?"]) == ["ab/abc1"]
    # a glob INPUT: patterns see each matched file's name
    assert [os.path.basename(f.path) for f in list_inputs(str(corpus / "*.*"), exclude=["*.md"])] == ["manifest.jsonl"]
    with pytest.raises(InputError, match="no files match"):
        list_inputs(str(corpus / "*.nothing"), include=["*"])


def test_listing_gives_text_forms_for_names_that_are_not_utf8(tmp_path):
    base = os.fsencode(tmp_path)
    for name in (b"bad\xff.bin", b"back\\slash", b"plain"):
        with open(os.path.join(base, name), "wb") as f:
            f.write(b"x" * len(name))
    os.symlink(os.path.join(base, b"gone\xfe"), os.path.join(base, b"dangling\xfe"))
    files = list_inputs(str(tmp_path))
    assert [(f.path, f.size, f.error) for f in files] == [
        (f"{tmp_path}/back\\\\slash", 10, None),
        (f"{tmp_path}/bad\\xff.bin", 8, None),
        (f"{tmp_path}/dangling\\xfe", 0, "dangling symbolic link"),
        (f"{tmp_path}/plain", 5, None),
    ]
    # a glob and a single file given by their real names (as a shell passes them)
    assert [f.path for f in list_inputs(os.fsdecode(base + b"/bad*"))] == [f"{tmp_path}/bad\\xff.bin"]
    assert [f.path for f in list_inputs(os.fsdecode(base + b"/bad\xff.bin"))] == [f"{tmp_path}/bad\\xff.bin"]
    # a manifest may carry the text form; sizes come from a stat of the real name
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "bad\\xff.bin"}) + "\n")
    assert list_inputs(str(tmp_path / "m.jsonl")) == [InputFile(f"{tmp_path}/bad\\xff.bin", 8)]


def test_manifest_line_numbers_count_blank_lines_and_big_files(tmp_path):
    m = tmp_path / "big.jsonl"
    lines = [json.dumps({"path": f"f{i:07d}", "size": i}) for i in range(60_000)]  # several pyarrow blocks
    lines[45_000] = '{"path": "oops", }'
    m.write_text("\n".join(lines[:10]) + "\n\n\n" + "\n".join(lines[10:]) + "\n")
    with pytest.raises(InputError) as err:
        list_inputs(str(m))
    assert str(err.value) == f"manifest {m} line 45003: invalid JSON (Missing a name for object member.)"


def test_manifest_labels_of_any_scalar_type_become_text(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"path": "a", "label": 1, "extra": {"nested": [1]}}\n{"path": "b", "label": 2, "size": "12"}\n')
    files = list_inputs(str(m))
    assert [(f.label, f.size) for f in files] == [("1", 0), ("2", 12)]
