"""PostgreSQL's data folder must be reachable by the ``postgres`` user through its parents."""

from __future__ import annotations

import stat
from pathlib import Path

from featurestore.config import load_settings
from featurestore.stack.postgres import PostgresServer


def test_private_parents_get_enter_but_not_list_rights(tmp_path: Path) -> None:
    private = tmp_path / "private"  # like `mktemp -d`: mode 0700
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    server = PostgresServer(load_settings({"FEATURESTORE_DATA_DIR": str(private / ".stack")}))
    server.data_dir.mkdir(parents=True)
    server._grant_traverse()
    mode = stat.S_IMODE(private.stat().st_mode)
    assert mode == 0o701
    for folder in [server.data_dir, *server.data_dir.parents]:
        assert folder.stat().st_mode & stat.S_IXOTH, folder
