"""edgebook.fileio (the two writers), edgebook.textfile and edgebook.yamlfile (the readers)."""

from __future__ import annotations

import os
import stat

import pytest

from edgebook import fileio, textfile, yamlfile
from edgebook.errors import ConfigError, EdgebookError


def test_write_new_never_replaces_and_sets_the_mode(tmp_path):
    path = fileio.write_new(tmp_path / "k.pem", b"one", 0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(EdgebookError, match="already exists and is never overwritten"):
        fileio.write_new(path, b"two")
    assert path.read_bytes() == b"one"


def test_write_new_does_not_follow_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ConfigError, match="already exists"):
        fileio.write_new(tmp_path / "link", b"x", error=ConfigError)
    assert target.read_bytes() == b"keep"


def test_write_new_into_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(EdgebookError, match=r"the folder .* does not exist"):
        fileio.write_new(tmp_path / "no" / "f", b"x")


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    fileio.write_atomic(path, b"old")
    fileio.write_atomic(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_read_text_names_the_first_bad_byte_after_a_bom(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfab\xff")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 5 is 0xff\)"):
        textfile.read_text(path, what="parameters file", error=ConfigError)
    path.write_bytes(b"\xef\xbb\xbfname: x\n")
    assert textfile.read_text(path, what="parameters file") == "name: x\n"


def test_read_bytes_stops_at_the_limit(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2049)
    with pytest.raises(EdgebookError, match="2 KiB, more than the 2 KiB"):
        textfile.read_bytes(path, what="file", limit=2048)
    assert textfile.read_bytes(path, what="file", limit=4096) == b"x" * 2049


def test_yaml_shared_values_within_the_bound_load(tmp_path):
    text = "base: &b {port: 25}\nsmtp: *b\nldaps: {<<: *b, port: 50636}\n"
    assert yamlfile.parse_yaml(text, "t", EdgebookError) == {
        "base": {"port": 25},
        "smtp": {"port": 25},
        "ldaps": {"port": 50636},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a [*a]\n", "recursive alias"),
        ("a: &a {b: *a}\n", "recursive alias"),
        ("a: " + "[" * 65 + "]" * 65 + "\n", "nested more than 64 levels"),
        ("a: 1\na: 2\n", "the key 'a' is given twice"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_yaml_refusals(text, expected):
    with pytest.raises(ConfigError, match=expected):
        yamlfile.parse_yaml(text, "t.yaml", ConfigError)


def test_section_numbers_are_finite_and_in_range():
    section = yamlfile.Section("f", {"a": float("nan"), "b": 5, "c": True}, "", ("a", "b", "c"))
    with pytest.raises(EdgebookError, match="a: found nan, expected a number from 0 to 10"):
        section.number("a", yamlfile.MISSING, 0, 10)
    assert section.number("b", yamlfile.MISSING, 0, 10) == 5.0
    with pytest.raises(EdgebookError, match="c: found True, expected a number"):
        section.number("c", yamlfile.MISSING, 0, 10)
