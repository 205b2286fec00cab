"""PostgreSQL 15 from the Debian package, as the project's own cluster on its own port."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import psycopg
from typing_extensions import override

from featurestore.errors import BackendUnavailableError
from featurestore.stack.base import Component
from featurestore.stack.base import require_binary
from featurestore.stack.private_file import copy_private
from featurestore.stack.private_file import write_private
from featurestore.stack.security import local_security

__all__ = ["PostgresServer"]

logger = logging.getLogger(__name__)

_PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer(Component):
    """The offline store's server: ``initdb`` once, then ``postgres`` bound to loopback.

    PostgreSQL refuses to run as root; when the stack runs as root the cluster belongs to the
    ``postgres`` system user that the Debian package creates.
    """

    name = "postgres"
    # SIGINT is PostgreSQL's "fast shutdown"; the postmaster stops its own backends.
    stop_signal = signal.SIGINT
    signal_whole_group = False

    @override
    def marker(self) -> str:
        """Recognise the process by its data folder, the argument of ``-D``."""
        return str(self.data_dir / "data")

    @override
    def address(self) -> str:
        """The server's URL, with the user and without the password."""
        pg = self.settings.postgres
        return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}"

    @property
    def _run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            shutil.chown(path, entry.pw_uid, entry.pw_gid)

    def _grant_traverse(self) -> None:
        """Let the ``postgres`` user reach its data folder through every parent folder.

        A checkout under a private folder (``mktemp -d`` makes mode 0700) would stop ``initdb``
        at the first parent it cannot enter; such parents get the execute bit for others
        (enter, not list), and the change is logged.
        """
        for folder in [self.data_dir, *self.data_dir.parents]:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                logger.warning(
                    "gave others the right to enter %s, so PostgreSQL reaches its data", folder
                )

    @property
    def _tls_dir(self) -> Path:
        return self.data_dir / "tls"

    def _prepare_tls(self) -> None:
        """Secured: the certificate, key and ``pg_hba.conf`` PostgreSQL reads as its user.

        The ``pg_hba.conf`` takes scram-sha-256 over TLS only.
        """
        certs = local_security(self.settings)
        if certs is None:
            return
        self._tls_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self._tls_dir)
        for source, name in ((certs.cert, "server.pem"), (certs.key, "server.key")):
            target = self._tls_dir / name
            copy_private(source, target)  # PostgreSQL refuses a key others can read
            self._chown(target)
        hba = self._tls_dir / "pg_hba.conf"
        hba.write_text(
            "# the secured local stack: passwords (scram-sha-256) over TLS only\n"
            "local all all scram-sha-256\n"
            "hostssl all all all scram-sha-256\n"
        )
        self._chown(hba)

    def _tls_options(self) -> list[str]:
        if not self.settings.security.enabled:
            return []
        tls = self._tls_dir
        return [
            "-c", "ssl=on",
            "-c", f"ssl_cert_file={tls / 'server.pem'}",
            "-c", f"ssl_key_file={tls / 'server.key'}",
            "-c", f"hba_file={tls / 'pg_hba.conf'}",
        ]  # fmt: skip

    @override
    def prepare(self) -> None:
        """Run ``initdb`` once, then, when secured, lay out the TLS files at every start.

        As root, the cluster is the ``postgres`` user's: ``initdb`` runs as that user, who is given
        a way into the data folder.
        """
        data = self.data_dir / "data"
        if (data / "PG_VERSION").exists():
            self._prepare_tls()
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        if self._run_as is not None:
            self._grant_traverse()
        pg = self.settings.postgres
        initdb = require_binary("initdb", _PG_BIN / "initdb")  # before the password is written
        pwfile = self.data_dir / "initdb.pw"
        write_private(pwfile, pg.password.get_secret_value() + "\n")
        self._chown(pwfile)
        command = [
            initdb,
            "-D",
            str(data),
            "-U",
            pg.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        if self._run_as is not None:
            command = [
                "setpriv",
                f"--reuid={self._run_as}",
                f"--regid={self._run_as}",
                "--init-groups",
                *command,
            ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise BackendUnavailableError(
                f"initdb {data} failed (exit {done.returncode}): {done.stderr.strip()}"
            )
        self._prepare_tls()

    @override
    def launch(self) -> int:
        """Run ``postgres`` on loopback, durable (fsync, synchronous commits); TLS when secured."""
        pg = self.settings.postgres
        postgres = require_binary("postgres", _PG_BIN / "postgres")
        return self.process.start(
            [
                postgres,
                "-D",
                str(self.data_dir / "data"),
                "-c",
                f"listen_addresses={pg.host}",
                "-c",
                f"port={pg.port}",
                "-c",
                f"unix_socket_directories={self.data_dir}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                *self._tls_options(),
            ],
            user=self._run_as,
        )

    def _connect(self, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.settings.postgres.dsn, dbname=dbname, connect_timeout=2)

    @override
    def healthy(self) -> bool:
        """``SELECT 1`` succeeds in the ``postgres`` database."""
        try:
            with self._connect("postgres") as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    @override
    def after_healthy(self) -> None:
        """Create the store's database (``postgres.database``) unless it exists."""
        database = self.settings.postgres.database
        with self._connect("postgres") as conn:
            conn.autocommit = True
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{database}"')
