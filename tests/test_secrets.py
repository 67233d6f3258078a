"""Secret references: env, keyring, prompt, file; secrets never leak into messages or repr."""

from __future__ import annotations

import getpass
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import keyring
import pytest
from keyring.backend import KeyringBackend

from edgebook.errors import EdgebookError
from edgebook.secrets import (
    Credential,
    SecretError,
    looks_like_reference,
    parse_reference,
    resolve_secret,
)

if TYPE_CHECKING:
    from _typeshed import StrOrBytesPath

SECRET = "Sup3r-S3cret!"


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend for tests."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_env_reference_resolves(monkeypatch):
    monkeypatch.setenv("EDGEBOOK_TEST_PW", SECRET)
    assert resolve_secret("env:EDGEBOOK_TEST_PW", what="EDGE01") == SECRET


def test_env_reference_unset_names_the_variable(monkeypatch):
    monkeypatch.delenv("EDGEBOOK_TEST_PW", raising=False)
    with pytest.raises(SecretError, match="EDGEBOOK_TEST_PW is not set") as info:
        resolve_secret("env:EDGEBOOK_TEST_PW", what="password for EDGE01")
    assert "password for EDGE01" in str(info.value)
    assert isinstance(info.value, EdgebookError)


def test_env_reference_empty_value_is_refused(monkeypatch):
    monkeypatch.setenv("EDGEBOOK_TEST_PW", "")
    with pytest.raises(SecretError, match="empty"):
        resolve_secret("env:EDGEBOOK_TEST_PW", what="EDGE01")


def test_keyring_reference_resolves(memory_keyring):
    memory_keyring.set_password("edgebook", "EDGE01", SECRET)
    assert resolve_secret("keyring:edgebook/EDGE01", what="EDGE01") == SECRET


def test_keyring_service_may_contain_slashes(memory_keyring):
    memory_keyring.set_password("edgebook/prod", "EDGE01", SECRET)
    assert resolve_secret("keyring:edgebook/prod/EDGE01", what="EDGE01") == SECRET


def test_keyring_missing_entry_says_how_to_store_it(memory_keyring):
    with pytest.raises(SecretError, match="keyring set edgebook EDGE02"):
        resolve_secret("keyring:edgebook/EDGE02", what="EDGE02")


def test_prompt_without_terminal_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(SecretError, match="needs a terminal"):
        resolve_secret("prompt", what="EDGE01")


def test_prompt_with_terminal_uses_getpass(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        asked.append(prompt)
        return SECRET

    fake_getpass.__module__ = "getpass"
    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    assert resolve_secret("prompt", what="password for EDGE01") == SECRET
    assert asked == ["password for EDGE01: "]


def test_prompt_in_a_kernel_that_forwards_input(monkeypatch):
    def kernel_getpass(prompt: str = "") -> str:
        return SECRET

    kernel_getpass.__module__ = "ipykernel.kernelbase"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(getpass, "getpass", kernel_getpass)
    assert resolve_secret("prompt", what="EDGE01") == SECRET


def test_file_reference_owner_only(tmp_path: Path):
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    assert resolve_secret(f"file:{secret_file}", what="lab") == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_file_reference_readable_by_others_is_refused(tmp_path: Path, mode: int):
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET)
    secret_file.chmod(mode)
    with pytest.raises(SecretError, match="chmod 600") as info:
        resolve_secret(f"file:{secret_file}", what="lab")
    assert SECRET not in str(info.value)


def test_file_reference_missing_file(tmp_path: Path):
    with pytest.raises(SecretError, match="does not exist"):
        resolve_secret(f"file:{tmp_path / 'nope'}", what="lab")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("env:", "environment variable name"),
        ("env:1BAD", "environment variable name"),
        ("keyring:onlyservice", "service/user"),
        ("file:", "needs a path"),
    ],
)
def test_malformed_references(ref: str, expected: str):
    with pytest.raises(SecretError, match=expected):
        parse_reference(ref, what="x")


def test_a_literal_is_not_a_reference_and_is_not_echoed():
    assert not looks_like_reference(SECRET)
    with pytest.raises(SecretError) as info:
        resolve_secret(SECRET, what="EDGE01")
    assert SECRET not in str(info.value)
    assert "env:NAME" in str(info.value)


def test_credential_repr_hides_the_password():
    credential = Credential("EDGE01\\Administrator", SECRET)
    assert SECRET not in repr(credential)
    assert SECRET not in str(credential)
    assert "hidden" in repr(credential)


def test_file_reference_not_utf8_is_a_clear_error(tmp_path: Path):
    secret_file = tmp_path / "pw"
    secret_file.write_bytes(b"\xff\xfe" + SECRET.encode("utf-16-le"))
    secret_file.chmod(0o600)
    with pytest.raises(SecretError, match="not UTF-8 text") as info:
        resolve_secret(f"file:{secret_file}", what="lab")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_file_reference_under_a_file_names_the_problem(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(SecretError, match="a part of its path is a file"):
        resolve_secret(f"file:{plain / 'pw'}", what="lab")


def test_file_reference_unreadable_is_a_clear_error(tmp_path: Path, monkeypatch):
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)

    real_open = os.open

    def denied(
        path: StrOrBytesPath, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if Path(str(path)) == secret_file:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(SecretError, match=r"cannot be read \(Permission denied\)"):
        resolve_secret(f"file:{secret_file}", what="lab")


def test_prompt_with_closed_input_is_a_clear_error(monkeypatch):
    def closed_getpass(prompt: str = "") -> str:
        raise EOFError

    closed_getpass.__module__ = "ipykernel.kernelbase"
    monkeypatch.setattr(getpass, "getpass", closed_getpass)
    with pytest.raises(SecretError, match="input ended"):
        resolve_secret("prompt", what="EDGE01")
