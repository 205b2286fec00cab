"""The settings of gRPC bearer tokens and of the registry's basic auth: parsing and refusals.

A malformed entry is refused when the settings load, with a message that names the variable and
the entry by its place, never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import traceback
from pathlib import Path

import pytest

from featurestore.config import GRPC_SCOPES
from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError

TOKENS = "FEATURESTORE_SERVICE__AUTH_TOKENS"
USERS = "FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USERS"
USER_INFO = "FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO"


def test_tokens_carry_their_scopes_and_only_a_digest_is_kept() -> None:
    digest = hashlib.sha256(b"hashed-tok").hexdigest()
    service = load_settings({TOKENS: f"plain-tok features:read predict, sha256:{digest} *"}).service
    plain, hashed = service.token_grants()
    assert plain.scopes == {"features:read", "predict"}
    assert plain.digest == hashlib.sha256(b"plain-tok").digest()
    assert hashed.scopes == set(GRPC_SCOPES)
    assert hashed.digest.hex() == digest
    assert "plain-tok" not in repr(service) and "plain-tok" not in repr(plain)
    assert service.auth
    assert not load_settings({}).service.auth


def test_tokens_from_a_file_and_back_through_the_environment(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        "# reader\nr-tok features:read\n\na-tok anomalies:subscribe datasets:export\n"
    )
    settings = load_settings({f"{TOKENS}_FILE": str(tokens)})
    assert [g.scopes for g in settings.service.token_grants()] == [
        {"features:read"},
        {"anomalies:subscribe", "datasets:export"},
    ]
    again = load_settings(settings_env(settings)).service
    assert again.token_grants() == settings.service.token_grants()


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("s3cret-tok", "entry 1 names no scope"),
        (
            "ok-tok predict, s3cret-tok features:write",
            "entry 2 has unknown scope(s) 'features:write' (did you mean 'features:read'?)",
        ),
        (
            # Entries separated by a space: the second token reads as a scope of the first.
            "ok-tok features:read s3cret-tok predict",
            "entry 1 has unknown scope(s) word 3 (not shown)",
        ),
        ("sha256:abc predict", "sha256: is to be followed by 64 hexadecimal digits"),
    ],
)
def test_a_malformed_token_entry_is_refused_without_showing_it(entry: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({TOKENS: entry})
    message = str(info.value)
    assert TOKENS in message and says in message
    assert "s3cret" not in message and "ok-tok" not in message


def test_registry_users_and_the_clients_credentials(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# user:password\nalice:pa:ss\nbob:b0b\n")
    registry = load_settings(
        {f"{USERS}_FILE": str(users), USER_INFO: "alice:pa:ss"}
    ).schema_registry
    assert {u: p.get_secret_value() for u, p in registry.users().items()} == {
        "alice": "pa:ss",
        "bob": "b0b",
    }
    expected = base64.b64encode(b"alice:pa:ss").decode()
    assert registry.auth_header == {"Authorization": f"Basic {expected}"}
    assert "pa:ss" not in repr(registry)
    assert load_settings({}).schema_registry.auth_header == {}
    assert load_settings({}).schema_registry.users() == {}


@pytest.mark.parametrize("variable", [USERS, USER_INFO])
def test_registry_credentials_without_a_colon_are_refused(variable: str) -> None:
    with pytest.raises(ConfigurationError, match="not of the form user:password") as info:
        load_settings({variable: "s3cretnocolon"})
    assert variable in str(info.value) and "s3cret" not in str(info.value)


def test_a_refused_secret_is_not_in_the_error_s_traceback() -> None:
    # A process outside the CLI's handler prints the whole chain; pydantic's error holds inputs.
    secret = "-".join(("hidden", "token", "value"))  # not in this file's source lines either
    with pytest.raises(ConfigurationError) as info:
        load_settings({TOKENS: f"{secret} features:write"})
    chain = "".join(traceback.format_exception(info.value))
    assert secret not in chain
