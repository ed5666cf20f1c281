"""A throwaway PostgreSQL 15 server in a temporary directory, for the tests and the benchmarks.

The tests wrap it in session fixtures (``tests/fixtures/postgres.py``); ``bench.db_writes`` and
``bench.app`` start one when no database URL is given. ``fsync=off``: never for data you keep.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: Where the server binaries live (``STALLTRIAGE_PG_BIN`` overrides the Debian path).
PG_BIN = Path(os.environ.get("STALLTRIAGE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary directory (``fsync=off``: tests and benches only).

    When running as root, the server runs as the ``postgres`` user (it refuses to run as root).
    """

    def __init__(self, bin_dir: Path = PG_BIN) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="stalltriage-pg-"))
        self.data_dir = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")

    @staticmethod
    def available(bin_dir: Path = PG_BIN) -> bool:
        """True when the server binaries are installed."""
        return (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """SQLAlchemy URL of database ``name`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self, **settings: str) -> PostgresServer:
        """Create the cluster and start the server; returns once it accepts connections.

        ``settings`` are server settings on top of the throwaway ones (``shared_buffers="2GB"``).
        """
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                   + "".join(f" -c {name}={value}" for name, value in settings.items()))
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on the postgres database."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(sql)
