"""The store's Feast repo (``registry/``), read the way ``feast apply`` reads it.

``feast apply`` imports every Python file of the repo (``.feastignore`` honoured, ``__init__.py``
skipped) as a top-level module named by its path, with the repo's folder on ``sys.path``, and
collects the Feast objects bound at module level. :func:`read_repo` does the same, so that
``feast apply`` in ``registry/`` and ``featurestore registry apply`` register the same objects,
and then converts them through the codec. Two differences, both to leave the process as it was:
the repo's modules are removed from ``sys.modules`` afterwards (their names, such as
``trades``, are too generic to keep), and its folder from ``sys.path``. Not thread-safe (it
changes ``sys.path``): call it at start-up.
"""

from __future__ import annotations

import ast
import importlib
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from featurestore.definitions.feast_codec import from_feast
from featurestore.definitions.feast_stream import quiet_stream_warnings
from featurestore.definitions.model import Definitions
from featurestore.errors import ConfigurationError

__all__ = ["PROJECT", "REPO_PATH", "FeastRepo", "load_repo", "read_repo"]

PROJECT = "featurestore"
"""The Feast project every process of the store uses by default."""

REPO_PATH = Path(__file__).resolve().parents[2] / "registry"
"""The store's Feast repo in the source tree (where ``feature_store.yaml`` is)."""


@dataclass(frozen=True)
class FeastRepo:
    """The Feast objects a repo defines, and the same as domain definitions."""

    entities: tuple[Any, ...]
    data_sources: tuple[Any, ...]
    """Every data source bound at module level or used by a view (stream and batch)."""
    views: tuple[Any, ...]
    """Feature views and stream feature views."""
    services: tuple[Any, ...]
    definitions: Definitions

    @property
    def objects(self) -> list[Any]:
        """Everything, for ``FeatureStore.apply``."""
        return [*self.entities, *self.data_sources, *self.views, *self.services]


@contextmanager
def _repo_modules(root: Path, names: list[str]) -> Iterator[None]:
    """The repo's folder first on ``sys.path`` and its modules fresh; both undone after."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(root))
    bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield
    finally:
        sys.dont_write_bytecode = bytecode
        sys.path.remove(str(root))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _import(root: Path) -> list[ModuleType]:
    from feast.repo_operations import get_repo_files

    files = get_repo_files(root)
    names = [".".join(f.relative_to(root).with_suffix("").parts) for f in files]
    modules = []
    with _repo_modules(root, names):
        for name, file in zip(names, files, strict=True):
            try:
                modules.append(importlib.import_module(name))
            except Exception as exc:  # a repo file is user code: any error is a bad definition
                raise ConfigurationError(_import_error(root, file, exc)) from exc
    return modules


def _import_error(root: Path, imported: Path, exc: Exception) -> str:
    """Where the repo's own code failed, and how: "registry file F, line N: NameError: ...".

    The place is the innermost frame of the traceback that is a file of the repo (a module the
    imported one imports may be the one at fault), or, for a syntax error, the line Python could
    not read; ``imported`` when neither is in the repo. The exception's type leads, as for a
    user's own Python it says most ("AssertionError" even without a message).
    """
    where: tuple[str, int | None] = (str(imported), None)
    if isinstance(exc, SyntaxError) and exc.filename and _inside(root, exc.filename):
        where = (exc.filename, exc.lineno)
    else:
        for frame, number in traceback.walk_tb(exc.__traceback__):
            if _inside(root, frame.f_code.co_filename):
                where = (frame.f_code.co_filename, number)
    file, line = where
    place = f"registry file {file}" + (f", line {line}" if line is not None else "")
    missing = _missing_feature(exc)
    if missing is not None:
        view, feature, known = missing
        service = _service_at(file, line) if line is not None else None
        owner = f"feature service {service!r}" if service else "a projection"
        return (
            f"{place}: {owner} names feature {feature!r} of feature view {view!r}, which has no"
            f" such feature (it has: {', '.join(known)})"
        )
    message = " ".join(str(exc.msg if isinstance(exc, SyntaxError) else exc).split())
    return f"{place}: {type(exc).__name__}" + (f": {message}" if message else "")


def _missing_feature(exc: Exception) -> tuple[str, str, list[str]] | None:
    """(view, feature, the view's features) when ``exc`` is Feast refusing ``view[[feature]]``.

    That is a feature service's projection of a feature the view does not have.
    """
    if not isinstance(exc, ValueError):
        return None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        if code.co_name != "__getitem__" or "feast" not in Path(code.co_filename).parts:
            continue
        view, feature = frame.f_locals.get("self"), frame.f_locals.get("feature")
        name = getattr(view, "name", None)
        if isinstance(name, str) and isinstance(feature, str):
            known = [str(getattr(f, "name", f)) for f in getattr(view, "features", ())]
            return name, feature, known
    return None


def _service_at(file: str, line: int) -> str | None:
    """The name of the ``FeatureService(name="...")`` called across ``line`` of ``file``."""
    try:
        tree = ast.parse(Path(file).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called != "FeatureService" or not node.lineno <= line <= (node.end_lineno or 0):
            continue
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg == "name" and isinstance(value, ast.Constant):
                return str(value.value)
    return None


def _inside(root: Path, filename: str) -> bool:
    """Whether ``filename`` is a file under the folder ``root``."""
    try:
        return Path(filename).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def _add(found: list[Any], obj: Any, kind: str, bound: dict[int, list[str]]) -> None:
    """Collect ``obj`` once; refuse another object of its kind with its name.

    The refusal names the files that bind each (``bound``: the repo files binding an object,
    by its id).
    """
    if any(obj is seen for seen in found):
        return
    for seen in found:
        if obj.name == seen.name:
            places = [", ".join(bound.get(id(o), [])) or "a file of the repo" for o in (seen, obj)]
            raise ConfigurationError(
                f"two different {kind}s are called {obj.name!r}: one bound in {places[0]}, the"
                f" other in {places[1]}"
            )
    found.append(obj)


def read_repo(path: Path = REPO_PATH, project: str = PROJECT) -> FeastRepo:
    """Import the Feast repo at ``path`` and collect what it defines (imports Feast: slow).

    Raises:
        ConfigurationError: a file fails to import, two objects of a kind share a name, an
            object this store does not support (an on-demand view), or a definition the codec
            refuses; the message names the file or the view.
    """
    from featurestore.definitions.feast_api import DataSource
    from featurestore.definitions.feast_api import Entity
    from featurestore.definitions.feast_api import FeatureService
    from featurestore.definitions.feast_api import FeatureView
    from featurestore.definitions.feast_api import OnDemandFeatureView

    root = path.resolve()
    if not root.is_dir():
        raise ConfigurationError(f"no Feast repo at {root}")
    entities: list[Any] = []
    sources: list[Any] = []
    views: list[Any] = []
    services: list[Any] = []
    with quiet_stream_warnings():
        modules = _import(root)
        bound: dict[int, list[str]] = {}
        for module in modules:
            for attr in dir(module):
                files = bound.setdefault(id(getattr(module, attr)), [])
                if module.__file__ is not None and module.__file__ not in files:
                    files.append(module.__file__)
        for module in modules:
            for attr in dir(module):
                obj = getattr(module, attr)
                if isinstance(obj, Entity):
                    _add(entities, obj, "entity", bound)
                elif isinstance(obj, FeatureView):  # StreamFeatureView is one too
                    _add(views, obj, "feature view", bound)
                    for source in (obj.stream_source, obj.batch_source):
                        if source is not None:
                            _add(sources, source, "data source", bound)
                elif isinstance(obj, FeatureService):
                    _add(services, obj, "feature service", bound)
                elif isinstance(obj, DataSource):
                    _add(sources, obj, "data source", bound)
                    batch = getattr(obj, "batch_source", None)
                    if batch is not None:
                        _add(sources, batch, "data source", bound)
                elif isinstance(obj, OnDemandFeatureView):
                    raise ConfigurationError(
                        f"on-demand feature view {obj.name!r}: not supported by this store"
                    )
    definitions = from_feast(project, entities, views, services)
    return FeastRepo(tuple(entities), tuple(sources), tuple(views), tuple(services), definitions)


def load_repo(path: Path = REPO_PATH, project: str = PROJECT) -> Definitions:
    """The definitions of the Feast repo at ``path`` (imports Feast and the repo: slow)."""
    return read_repo(path, project).definitions
