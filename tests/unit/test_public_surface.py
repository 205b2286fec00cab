"""The public surface of the store's packages and of the SDK is what ``__all__`` says.

As httpx and temporalio do: each package re-exports from its modules, and a test pins what it
means to export, so that a name appearing or vanishing is a decision, not an accident. The pinned
lists are data, one file per package in ``public_surface/`` (``<package>.txt``, a name a line,
sorted): a change to a package's surface is a change to its file, reviewed next to the code.
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import featurestore_client
import pytest

SNAPSHOTS = Path(__file__).parent / "public_surface"


def _pinned(name: str) -> list[str]:
    return (SNAPSHOTS / f"{name}.txt").read_text().split()


def _public_names(package: types.ModuleType) -> set[str]:
    """Names bound in the package that are neither private nor its submodules."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }


def _check_all(package: types.ModuleType) -> None:
    exported = list(package.__all__)  # its literal part kept sorted by ruff (RUF022)
    assert len(set(exported)) == len(exported), f"{package.__name__}.__all__ repeats a name"
    for name in exported:
        assert hasattr(package, name), f"{package.__name__}.__all__ names missing {name}"
    unlisted = _public_names(package) - set(exported)
    assert not unlisted, f"{package.__name__} binds {sorted(unlisted)} outside __all__"


@pytest.mark.parametrize("name", sorted(p.stem for p in SNAPSHOTS.glob("*.txt")))
def test_packages_export_what_their_snapshot_pins(name: str) -> None:
    package = importlib.import_module(name)
    exported, pinned = set(package.__all__), set(_pinned(name))
    assert exported == pinned, (
        f"{name}.__all__ differs from {SNAPSHOTS.name}/{name}.txt: "
        f"added {sorted(exported - pinned)}, removed {sorted(pinned - exported)}; "
        "if the change is meant, change the file with it"
    )
    assert _pinned(name) == sorted(pinned), f"{SNAPSHOTS.name}/{name}.txt is not sorted"
    _check_all(package)


def test_sdk_exports_its_own_types_only() -> None:
    """Every name the SDK exports is defined in the SDK (no re-exported dependency type)."""
    for name in featurestore_client.__all__:
        value = getattr(featurestore_client, name)
        module = getattr(value, "__module__", "featurestore_client")
        assert module.startswith("featurestore_client"), f"{name} comes from {module}"
