"""The secured local stack's own registry user and gRPC tokens (``featurestore/security.py``)."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from featurestore.config import GRPC_SCOPES
from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError
from featurestore.security import ALL_SCOPES
from featurestore.security import credentials_file
from featurestore.security import local_credentials
from featurestore.service.auth import TokenCheck


def _secured(folder: Path, **more: str) -> dict[str, str]:
    return {"FEATURESTORE_SECURITY__ENABLED": "true", "FEATURESTORE_DATA_DIR": str(folder), **more}


def test_secured_settings_make_the_credentials_once_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    settings = load_settings(_secured(tmp_path))
    path = credentials_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = json.loads(path.read_text())
    assert set(made["grpc_tokens"]) == {ALL_SCOPES, *GRPC_SCOPES}
    # The registry accepts the user its clients send; the server knows every token.
    registry = settings.schema_registry
    assert registry.basic_auth_user_info is not None
    user, password = registry.basic_auth_user_info.get_secret_value().split(":", 1)
    assert (
        registry.users()[user].get_secret_value() == password == made["schema_registry"]["password"]
    )
    check = TokenCheck(settings.service.token_grants())
    method = "/featurestore.v1.FeatureService/GetOnlineFeatures"
    for scope, token in made["grpc_tokens"].items():
        metadata = (("authorization", f"Bearer {token}"),)
        for wanted in GRPC_SCOPES:
            granted = check.refusal(metadata, method, wanted) is None
            assert granted == (scope in (ALL_SCOPES, wanted)), (scope, wanted)
    assert check.refusal((), method, "features:read") is not None
    dashboard = settings.dashboard.grpc_token
    assert dashboard is not None and dashboard.get_secret_value() == made["grpc_tokens"]["*"]
    # Loaded again (another process of the stack), or rebuilt in a child: the same credentials.
    again = load_settings(_secured(tmp_path))
    assert again == settings and load_settings(settings_env(settings)) == settings
    shown = repr(settings) + repr(local_credentials(tmp_path, GRPC_SCOPES))
    assert password not in shown
    assert not any(token in shown for token in made["grpc_tokens"].values())


def test_explicit_registry_users_and_tokens_win(tmp_path: Path) -> None:
    settings = load_settings(
        _secured(
            tmp_path,
            FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USER_INFO="ops:secret",
            FEATURESTORE_SERVICE__AUTH_TOKENS="mine features:read",
        )
    )
    info = settings.schema_registry.basic_auth_user_info
    assert info is not None and info.get_secret_value() == "ops:secret"
    assert [t.get_secret_value() for t in settings.service.auth_tokens] == ["mine features:read"]


def test_open_settings_make_no_credentials(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    assert not credentials_file(tmp_path).exists()
    assert settings.schema_registry.basic_auth_users == () and not settings.service.auth


def test_processes_that_start_at_once_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: local_credentials(tmp_path, GRPC_SCOPES), range(16)))
    assert all(c == made[0] for c in made)
    assert [p.name for p in credentials_file(tmp_path).parent.iterdir()] == ["credentials.json"]


def test_a_credentials_file_others_may_read_or_that_is_not_one_is_refused(tmp_path: Path) -> None:
    local_credentials(tmp_path, GRPC_SCOPES)
    path = credentials_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"may be read by others \(mode 0644\)"):
        load_settings(_secured(tmp_path))
    path.chmod(0o600)
    path.write_text('{"grpc_tokens": {}}')
    with pytest.raises(ConfigurationError, match="not the secured stack's credentials file"):
        local_credentials(tmp_path, GRPC_SCOPES)
    data = json.loads(local_credentials_text(tmp_path))
    del data["grpc_tokens"]["predict"]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigurationError, match="no gRPC token for predict"):
        local_credentials(tmp_path, GRPC_SCOPES)


def local_credentials_text(folder: Path) -> str:
    """A fresh, valid credentials file's text (made in a folder of its own)."""
    other = folder / "other"
    local_credentials(other, GRPC_SCOPES)
    return credentials_file(other).read_text()
