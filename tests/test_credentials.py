"""Secrets by reference: resolved from the real environment or a real keyring backend, never shown.

The keyring tests use keyrings.alt's PlaintextKeyring writing into tmp_path: a real keyring backend
behind the real `keyring` API, so the lookup path is the one a user's desktop keyring takes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyrings.alt.file as plaintext
import pytest
from pydantic import SecretStr, ValidationError

from harness.target.base import TargetError
from harness.target.windows.credentials import (
    LITERAL_SECRET_REFUSED,
    CredentialError,
    KeyringEntry,
    SecretRef,
)

SECRET = "S3cret-Value-that-must-never-show-9f1c"


def _no_secret_in(*objects: object) -> None:
    for obj in objects:
        assert SECRET not in str(obj), f"secret in str() of {type(obj).__name__}"
        assert SECRET not in repr(obj), f"secret in repr() of {type(obj).__name__}"


def test_env_reference_resolves_to_a_masked_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LKDH_TEST_PASSWORD", SECRET)
    ref = SecretRef(env="LKDH_TEST_PASSWORD")
    secret = ref.resolve()
    assert isinstance(secret, SecretStr)
    assert secret.get_secret_value() == SECRET
    assert ref.describe() == "environment variable LKDH_TEST_PASSWORD"
    _no_secret_in(ref, secret, ref.model_dump(), ref.model_dump_json())


def test_unset_env_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LKDH_WINRM_PASSWORD", raising=False)
    with pytest.raises(CredentialError) as caught:
        SecretRef(env="LKDH_WINRM_PASSWORD").resolve()
    assert str(caught.value) == "environment variable LKDH_WINRM_PASSWORD is not set"
    assert isinstance(caught.value, TargetError)  # reported as infrastructure, not a product failure


def test_empty_env_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LKDH_TEST_PASSWORD", "")
    with pytest.raises(CredentialError, match="LKDH_TEST_PASSWORD is set but empty"):
        SecretRef(env="LKDH_TEST_PASSWORD").resolve()


def test_resolving_logs_where_from_but_never_the_value(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LKDH_TEST_PASSWORD", SECRET)
    with caplog.at_level(logging.DEBUG):
        SecretRef(env="LKDH_TEST_PASSWORD").resolve()
    assert "environment variable LKDH_TEST_PASSWORD" in caplog.text  # the log line exists...
    assert SECRET not in caplog.text  # ...and carries no value


@pytest.mark.parametrize("literal", [SECRET, 12345678, 3.5])
def test_a_literal_secret_is_refused_without_being_repeated(literal: object) -> None:
    with pytest.raises(ValidationError) as caught:
        SecretRef.model_validate(literal)
    assert LITERAL_SECRET_REFUSED in str(caught.value)
    assert str(literal) not in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [{}, {"env": "A", "keyring": {"service": "s", "username": "u"}}, {"env": "NOT A NAME"}, {"vault": "x"}],
)
def test_exactly_one_well_formed_source(data: dict) -> None:
    with pytest.raises(ValidationError):
        SecretRef.model_validate(data)


@pytest.fixture
def plaintext_keyring(tmp_path: Path) -> Iterator[object]:
    """A real file-backed keyring in tmp_path, installed as the process's keyring for one test."""
    backend = plaintext.PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield keyring
    finally:
        keyring.set_keyring(previous)


def test_keyring_reference_resolves(plaintext_keyring, caplog: pytest.LogCaptureFixture) -> None:
    plaintext_keyring.set_password("lkdh", "lkdh-admin", SECRET)
    ref = SecretRef(keyring=KeyringEntry(service="lkdh", username="lkdh-admin"))
    with caplog.at_level(logging.DEBUG):
        secret = ref.resolve()
    assert secret.get_secret_value() == SECRET
    assert "keyring lkdh/lkdh-admin" in caplog.text
    _no_secret_in(ref, secret, caplog.text)


def test_keyring_without_the_entry_names_service_and_user(plaintext_keyring) -> None:
    plaintext_keyring.set_password("lkdh", "someone-else", SECRET)
    with pytest.raises(CredentialError) as caught:
        SecretRef(keyring=KeyringEntry(service="lkdh", username="lkdh-admin")).resolve()
    assert str(caught.value) == "keyring has no secret for service/user lkdh/lkdh-admin"


def test_a_failing_keyring_backend_is_named_not_quoted(plaintext_keyring) -> None:
    from keyring.backends.fail import Keyring as NoBackend

    plaintext_keyring.set_keyring(NoBackend())
    with pytest.raises(CredentialError, match=r"keyring failed to read lkdh/u: NoKeyringError"):
        SecretRef(keyring=KeyringEntry(service="lkdh", username="u")).resolve()


def test_missing_keyring_package_says_so(tmp_path: Path) -> None:
    """A fresh interpreter where `import keyring` fails, as on a machine without the package."""
    program = textwrap.dedent(
        """
        import sys
        sys.modules["keyring"] = None  # makes `import keyring` raise ImportError
        from harness.target.windows.credentials import CredentialError, KeyringEntry, SecretRef
        try:
            SecretRef(keyring=KeyringEntry(service="lkdh", username="u")).resolve()
        except CredentialError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("keyring package not installed")
    assert "lkdh/u" in done.stdout
