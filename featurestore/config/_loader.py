"""Settings from ``FEATURESTORE_*`` variables and a file, and back to variables for a child."""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import get_args
from typing import get_origin

from pydantic import BaseModel
from pydantic import SecretStr
from pydantic import ValidationError

from featurestore.config._settings import Settings
from featurestore.config._stack_shape import STACK_SHAPE
from featurestore.config._stack_shape import stack_shape_file
from featurestore.errors import ConfigurationError

__all__ = [
    "NOT_SETTINGS",
    "load_settings",
    "settings_env",
]

NOT_SETTINGS: Mapping[str, str] = {
    "FEATURESTORE_CONFIG": "names the settings file (this loader)",
    "FEATURESTORE_SHARED_DIR": "the shared data folder (featurestore/ingest/paths.py, tests)",
    "FEATURESTORE_TOKEN": "the bearer token the SDKs, their examples and the tests send",
    "FEATURESTORE_SPARK_DRIVER_MEMORY": "a processor's spark.driver.memory"
    " (processors/spark/session.py)",
    "FEATURESTORE_TEST_ARTIFACTS": "where the browser tests keep screenshots",
}
"""The ``FEATURESTORE_*`` environment variables that are no setting, each read from the process's
environment by its own code: the loader lets them pass (any other name of the prefix that is no
setting is refused as a typo). A new one is added here, with where it is read."""

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from an environment mapping (``os.environ`` by default).

    Raises:
        ConfigurationError: a value is malformed, a variable names no setting, a line of the
            ``FEATURESTORE_CONFIG`` file is malformed or the file cannot be read; the message
            names the variable (and the file's line).

    ``FEATURESTORE_CONFIG`` may name a dotenv-style file whose ``FEATURESTORE_*`` lines are read
    first (see the module's docstring); variables in the mapping win over the file. A secret (a
    ``SecretStr`` field) may be given as a file instead, by the variable's name with ``_FILE``
    appended (``FEATURESTORE_KAFKA__PASSWORD_FILE=/run/secrets/kafka``), as orchestrators mount
    secrets.

    With the process's environment (``environ`` None), the shape the local stack's data folder
    was started with (``<data_dir>/stack.env``: its Kafka nodes, Redis Cluster, security; see
    :mod:`featurestore.config._stack_shape`) comes beneath both, so that a shell which did not
    export them reaches the stack as it runs. A mapping given is the whole environment.
    """
    env = dict(os.environ if environ is None else environ)
    config_file = env.get("FEATURESTORE_CONFIG")
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    if config_file:
        for key, (value, where) in _read_config_file(config_file).items():
            values[key], origins[key] = value, where
    for key, value in env.items():
        if key.startswith("FEATURESTORE_") and key not in NOT_SETTINGS:
            values[key] = value
            origins.pop(key, None)
    if environ is None:
        data_dir = Path(values.get("FEATURESTORE_DATA_DIR", "").strip() or ".stack")
        shape = stack_shape_file(data_dir)
        if shape.is_file():
            given = {_canonical(key) for key in values}
            for key, (value, where) in _read_config_file(str(shape), str(shape)).items():
                if key in STACK_SHAPE and key not in given:
                    values[key], origins[key] = value, where
    _refuse_unknown(values, origins)
    return _settings_from(_secret_files(values, origins), origins)


def _read_config_file(path: str, which: str = "FEATURESTORE_CONFIG") -> dict[str, tuple[str, str]]:
    """A settings file's variables, each with its value and ``FILE:LINE``.

    Raises:
        ConfigurationError: the file cannot be read (the message begins with ``which``), or
            lines are not ``KEY=value``; every bad line is named.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(f"{which}: cannot read {path}: {why}") from exc
    found: dict[str, tuple[str, str]] = {}
    problems = []
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        try:
            parsed = _config_line(raw)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if parsed is not None:
            found[parsed[0]] = (parsed[1], where)
    if problems:
        raise ConfigurationError("; ".join(problems))
    return found


def _config_line(raw: str) -> tuple[str, str] | None:
    """One line of the settings file as its key and value; None for a blank or comment line.

    Raises:
        ValueError: the line is not ``[export] FEATURESTORE_NAME=value``, saying why.
    """
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("[") and line.endswith("]"):
        raise ValueError(
            f"{line!r} is a TOML table; this file holds KEY=value lines such as"
            " FEATURESTORE_KAFKA__PORT=19092"
        )
    words = line.split(maxsplit=1)
    if words[0] == "export" and len(words) == 2:
        line = words[1]
    key, sep, value = (part.strip() for part in line.partition("="))
    if not sep:
        raise ValueError("not of the form FEATURESTORE_NAME=value")
    if not _VARIABLE.fullmatch(key):
        raise ValueError(f"{key!r} is not a variable name (FEATURESTORE_NAME=value)")
    if not key.startswith("FEATURESTORE_"):
        raise ValueError(
            f"{key} is not a setting: this file holds FEATURESTORE_* variables such as"
            " FEATURESTORE_KAFKA__PORT=19092"
        )
    if key in NOT_SETTINGS:
        raise ValueError(f"{key} is read from the environment, not from this file")
    if value[:1] in ("'", '"'):
        quote = value[0]
        if len(value) < 2 or not value.endswith(quote) or quote in value[1:-1]:
            raise ValueError(f"{key}: the value's quote {quote} is not closed at the line's end")
        value = value[1:-1]
    return key, value


@functools.cache
def _setting_names() -> dict[str, tuple[str, ...]]:
    """Every setting's variable, upper-case, mapped to its place in :class:`Settings`."""
    names: dict[str, tuple[str, ...]] = {}
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            names[f"FEATURESTORE_{name.upper()}"] = (name,)
            continue
        for field_name, field_info in model.model_fields.items():
            key = field_info.alias or field_name
            names[f"FEATURESTORE_{name.upper()}__{key.upper()}"] = (name, key)
    return names


def _section_models() -> dict[str, type[BaseModel]]:
    """The groups of settings, by variable (``FEATURESTORE_KAFKA``)."""
    models = {}
    for name, info in Settings.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            models[f"FEATURESTORE_{name.upper()}"] = info.annotation
    return models


def _canonical(key: str) -> str:
    """``key`` with the part after the prefix upper-cased (the loader ignores its case)."""
    return "FEATURESTORE_" + key.removeprefix("FEATURESTORE_").upper()


def _refuse_unknown(values: Mapping[str, str], origins: Mapping[str, str]) -> None:
    """Refuse a variable that names no setting, a group given a value, with the closest name.

    Raises:
        ConfigurationError: naming every such variable (and its line, when from the file).
    """
    names = _setting_names()
    secret_files = [f"{name}_FILE" for name in names if _is_secret(name)]
    known = [*names, *secret_files]
    sections = _section_models()
    problems = []
    for key in sorted(values):
        canonical = _canonical(key)
        if canonical in names or canonical in secret_files:
            continue
        if canonical in sections:
            problem = (
                f"{key} is given a value, but it is a group of settings: set its fields as"
                f" {canonical}__<FIELD> instead"
            )
        else:
            suffixes = [name.removeprefix("FEATURESTORE_") for name in known]
            close = difflib.get_close_matches(
                canonical.removeprefix("FEATURESTORE_"), suffixes, n=1, cutoff=0.75
            )
            hint = f" (did you mean FEATURESTORE_{close[0]}?)" if close else ""
            problem = f"{key} is not a setting{hint}"
        where = origins.get(key)
        problems.append(f"{where}: {problem}" if where else problem)
    if problems:
        raise ConfigurationError("; ".join(problems))


def _secret_files(values: Mapping[str, str], origins: dict[str, str]) -> dict[str, str]:
    """``values`` with each ``<secret>_FILE`` variable replaced by the secret its file holds."""
    out = dict(values)
    for key, path in values.items():
        target = key.removesuffix("_FILE")
        if target == key or not _is_secret(target):
            continue
        if target in values:
            raise ConfigurationError(f"{key} and {target} are both set: keep one")
        try:
            out[target] = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(f"{key}: cannot read {path}: {exc.strerror}") from exc
        del out[key]
        if key in origins:
            origins[target] = origins[key]
    return out


def _is_secret(key: str) -> bool:
    """Whether ``FEATURESTORE_<SECTION>__<FIELD>`` names a ``SecretStr`` field."""
    info = _field_info(key)
    return info is not None and "SecretStr" in str(info.annotation)


def _field_info(key: str) -> Any:
    """The pydantic ``FieldInfo`` of the setting ``key`` names; None where it names none."""
    place = _setting_names().get(_canonical(key))
    if place is None:
        return None
    if len(place) == 1:
        return Settings.model_fields[place[0]]
    model = Settings.model_fields[place[0]].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return next(
        info for name, info in model.model_fields.items() if (info.alias or name) == place[1]
    )


def _settings_from(values: Mapping[str, str], origins: Mapping[str, str]) -> Settings:
    """The settings from known ``FEATURESTORE_*`` variables (:func:`_refuse_unknown` has run).

    An empty value leaves a setting at its default (a list: empty, even one whose default is
    None; a secret: as given), a value of only whitespace is refused; other values lose their
    surrounding whitespace (not secrets).
    """
    nested: dict[str, Any] = {}
    names = _setting_names()
    problems = []
    for key, value in values.items():
        info = _field_info(key)
        if info is None:  # FEATURESTORE_CONFIG, or a name _refuse_unknown has let pass
            continue
        if "SecretStr" not in str(info.annotation):
            if value and not value.strip():
                why = "the value is blank (only whitespace): give one, or leave it empty"
                problems.append(_at(origins, key, f"{key}: {why} for the default"))
                continue
            value = value.strip()
            if not value and not _is_list(info.annotation):
                continue
        *groups, name = names[_canonical(key)]
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    if problems:
        raise ConfigurationError("; ".join(problems))
    try:
        return Settings.model_validate(nested)
    except ValidationError as exc:
        messages = dict.fromkeys(_validation_message(error, origins) for error in exc.errors())
        # from None: pydantic's error holds each input value, secrets included, and a chained
        # traceback (a process outside the CLI's handler) would print them.
        raise ConfigurationError(f"invalid settings: {'; '.join(messages)}") from None


def _is_list(annotation: Any) -> bool:
    """A list setting (``tuple[str, ...]``, or ``tuple[str, ...] | None``): empty is a value."""
    if get_origin(annotation) is tuple:
        return True
    return any(get_origin(a) is tuple for a in get_args(annotation))


def _at(origins: Mapping[str, str], key: str, message: str) -> str:
    """``message`` after the ``FILE:LINE`` of ``key`` where the settings file gave it."""
    where = origins.get(key) or origins.get(_canonical(key))
    return f"{where}: {message}" if where else message


def _validation_message(error: Any, origins: Mapping[str, str]) -> str:
    """One pydantic error as ``FEATURESTORE_<NAME>: what is wrong``.

    A message that names its variables itself (a check across fields) is kept as it is; an
    entry of a list is named by the list's variable.
    """
    message = str(error["msg"]).removeprefix("Value error, ")
    parts = [str(part) for part in error["loc"] if isinstance(part, str)][:2]
    variable = "FEATURESTORE_" + "__".join(parts).upper()
    if message.startswith("FEATURESTORE_") or not parts:
        return message
    origin = {_canonical(k): v for k, v in origins.items()}.get(variable)
    text = f"{variable}: {message}"
    return f"{origin}: {text}" if origin else text


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``FEATURESTORE_*`` variables that rebuild ``settings`` in a child process."""
    env: dict[str, str] = {"FEATURESTORE_DATA_DIR": str(settings.data_dir.resolve())}
    dumped = settings.model_dump(by_alias=True, exclude={"data_dir"})
    for section, fields in dumped.items():
        for key, value in fields.items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, tuple | list):
                value = ",".join(
                    v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value
                )
            env[f"FEATURESTORE_{section.upper()}__{key.upper()}"] = str(value)
    return env
