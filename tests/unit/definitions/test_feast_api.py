"""Importing Feast through ``feast_api`` leaves nothing of the importer's frames alive."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

# A fresh interpreter: Feast's first import in the process is the one under test.
_FIRST_IMPORT = textwrap.dedent(
    """
    import gc
    import weakref


    class Held:
        pass


    def first_importer():
        held = Held()
        from featurestore.definitions.feast_api import Entity  # noqa: F401

        return weakref.ref(held)


    ref = first_importer()
    gc.collect()
    print("alive" if ref() is not None else "gone")
    """
)


def test_the_first_import_of_feast_keeps_none_of_its_callers_locals() -> None:
    """Feast keeps its torch ImportError with the traceback, which held the callers' frames."""
    # stderr is the test's own: a failing import shows there
    out = subprocess.check_output(
        [sys.executable, "-c", _FIRST_IMPORT], text=True, timeout=180, cwd=REPO_ROOT
    )
    assert out.strip() == "gone"
