"""Credentials by reference: a target config names where a secret lives, never the secret itself.

DESIGN.md: credentials come from the environment or a keyring, never from files in the repository,
and never appear in logs or reports. So a config holds a `SecretRef` (`{env: NAME}` or
`{keyring: {service, username}}`), which is safe to print, log and store in a run record; only
`resolve()` touches the secret, and hands it back as a `pydantic.SecretStr` whose str and repr are
masked. Every message here is built from the reference (variable name, service, user), never from a
value, so an exception or a log line cannot leak what it failed to find.

`keyring` is optional: it is imported only when a keyring reference is resolved, so a machine that
keeps its secrets in the environment (CI) needs nothing more installed.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, Strict, model_validator

from harness.target.base import TargetError

_log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _env_name(value: str) -> str:
    # The value is not quoted: a password pasted here by mistake must not be echoed back.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("not an environment variable name (letters, digits and '_', at most 128)")
    return value


EnvName = Annotated[str, Strict(), AfterValidator(_env_name)]
KeyringText = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")]

LITERAL_SECRET_REFUSED = (
    "a secret is never written in the config file: refer to it as {env: VARIABLE_NAME} "
    "or {keyring: {service: NAME, username: USER}}"
)


class CredentialError(TargetError):
    """A secret could not be resolved; the message names the reference, never a value."""


class KeyringEntry(BaseModel):
    """Where a secret sits in the system keyring: `keyring.get_password(service, username)`."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    service: KeyringText
    username: KeyringText


class SecretRef(BaseModel):
    """Exactly one of `env` (an environment variable's name) or `keyring` (a keyring entry).

    A bare string in its place is refused with `LITERAL_SECRET_REFUSED`, and the refusal does not
    repeat the string: it is most likely the password itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    env: EnvName | None = None
    keyring: KeyringEntry | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_literal(cls, value: Any) -> Any:
        if isinstance(value, str | bytes | int | float):
            raise ValueError(LITERAL_SECRET_REFUSED)
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        if (self.env is None) == (self.keyring is None):
            raise ValueError("give exactly one of `env` (a variable name) or `keyring` (service, username)")
        return self

    def describe(self) -> str:
        """Where the secret comes from, fit for logs: 'environment variable X', 'keyring lkdh/alice'."""
        if self.env is not None:
            return f"environment variable {self.env}"
        assert self.keyring is not None
        return f"keyring {self.keyring.service}/{self.keyring.username}"

    def resolve(self) -> SecretStr:
        """The secret, masked; raises `CredentialError` saying which reference came back empty."""
        secret = _from_env(self.env) if self.env is not None else _from_keyring(self.keyring)
        _log.debug("resolved a secret from %s", self.describe())
        return SecretStr(secret)


def _from_env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise CredentialError(f"environment variable {name} is not set")
    if value == "":
        raise CredentialError(f"environment variable {name} is set but empty")
    return value


def _from_keyring(entry: KeyringEntry | None) -> str:
    assert entry is not None
    where = f"{entry.service}/{entry.username}"
    try:
        keyring = importlib.import_module("keyring")
    except ImportError:
        raise CredentialError(
            f"keyring package not installed: it is needed for the secret at keyring {where} "
            "(pip install keyring, or use {env: VARIABLE_NAME})"
        ) from None
    try:
        value = keyring.get_password(entry.service, entry.username)
    except Exception as exc:  # a backend's own failure (locked, no backend): its type says enough
        raise CredentialError(f"keyring failed to read {where}: {type(exc).__name__}") from None
    if not value:
        raise CredentialError(f"keyring has no secret for service/user {where}")
    return str(value)
