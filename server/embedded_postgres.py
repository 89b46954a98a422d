"""The embedded Postgres: the binaries package ``pgserver`` ships, run under the data folder,
and open only to whoever has its password.

Contract:
- :meth:`EmbeddedPostgres.start` starts the server (or reuses one an earlier run of the same
  folder left running), makes sure database ``mentara`` exists, and returns a URL that
  carries the password: ``postgresql://postgres:<password>@/mentara?host=<socket dir>``.
- Every connection needs the password (``scram-sha-256`` in ``pg_hba.conf``, for unix
  sockets and TCP alike; no ``trust`` line). The password is generated once into
  ``<data_dir>/postgres-password`` (mode 0600) and kept.
- The server listens on no TCP address, only on a unix socket in a folder of mode 0700 owned
  by the user Postgres runs as, and the socket itself is 0700: other local users cannot
  even reach it.
- A data folder from an earlier version (``trust`` for every local user, the socket in the
  Postgres folder) is migrated on its first start: a server of it still running is stopped,
  the password is set in single-user mode (no connection is ever accepted without it), then
  ``pg_hba.conf`` is rewritten and the server started the new way. Its data is kept.
- As root, Postgres runs as the system user ``pgserver`` (created when missing), as
  ``pgserver`` itself does: Postgres refuses to run as root.
- :meth:`EmbeddedPostgres.stop` stops the server (a fast shutdown); idempotent.
- Two processes starting one folder at once are serialised by a lock file in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from server.data_folder import short_socket_dir, stored_secret

DATABASE_NAME: Final = "mentara"
SUPERUSER: Final = "postgres"
_SYSTEM_USER: Final = "pgserver"  # the name pgserver itself uses as root
_START_TIMEOUT_S: Final = 60
PG_HBA: Final = """\
# Written by mentara (server/embedded_postgres.py): every connection needs the password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


class EmbeddedError(RuntimeError):
    """An embedded server could not be started."""


@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _running: Any = None  # pgserver's PostmasterInfo of the server in use

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "postgres-password"

    @property
    def socket_dir(self) -> Path:
        """Where a server started by this class puts its socket (0700)."""
        return short_socket_dir(self.data_dir, "postgres-run", ".s.PGSQL.5432")

    def start(self) -> str:
        """Start (or reuse) the server, make sure database ``mentara`` exists; return its URL
        (with the password). Raises :class:`EmbeddedError`."""
        from pgserver.utils import PostmasterInfo

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        with _folder_lock(self.data_dir / "postgres.lock"):
            password, created = stored_secret(self.password_file)
            user = self._system_user()
            try:
                if not (self.pgdata / "PG_VERSION").exists():
                    # trust only in the files initdb writes: the server never runs with them.
                    self._pg("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER,
                             user=user)  # fmt: skip
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
                running = info is not None and info.is_running()
                if created or self._hba_text() != PG_HBA:
                    if running:
                        self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop",
                                 user=user)  # fmt: skip
                        running = False
                    self._set_password(password, user)
                    self._write_hba(user)
                if not running:
                    self._start_server(user)
                    info = PostmasterInfo.read_from_pgdata(self.pgdata)
            except (OSError, subprocess.SubprocessError) as exc:
                raise EmbeddedError(f"embedded postgres did not start: {exc}; see "
                                    f"{self.pgdata / 'log'}") from exc  # fmt: skip
            if info is None or not info.is_running() or info.socket_dir is None:
                raise EmbeddedError(f"embedded postgres is not running; see {self.pgdata / 'log'}")
            self._running = info
            if not self._psql(
                f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'", password
            ):
                self._psql(f"CREATE DATABASE {DATABASE_NAME}", password)
            return self._url(password, DATABASE_NAME)

    def stop(self) -> None:
        """Stop the server this object started or reused (fast shutdown); idempotent."""
        info, self._running = self._running, None
        if info is None or not info.is_running():
            return
        with contextlib.suppress(Exception):
            self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop",
                     user=self._system_user())  # fmt: skip

    # --- pieces --------------------------------------------------------------------------

    def _url(self, password: str, database: str) -> str:
        info = self._running
        assert info is not None
        return (
            f"postgresql://{SUPERUSER}:{quote(password, safe='')}@/{database}"
            f"?host={quote(str(info.socket_dir))}&port={info.port or 5432}"
        )

    def _system_user(self) -> str | None:
        """As root, the user Postgres runs as, with what it must reach made reachable (the
        same steps as ``pgserver``); otherwise None (Postgres runs as this user)."""
        if os.geteuid() != 0:
            return None
        import pwd
        import stat

        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(_SYSTEM_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        return _SYSTEM_USER

    def _pg(self, program: str, *args: str, user: str | None, **kwargs: Any) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            user=user, capture_output=True, text=True, timeout=_START_TIMEOUT_S, **kwargs,
        )  # fmt: skip
        if done.returncode != 0:
            raise subprocess.SubprocessError(
                f"{program} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
            )
        return str(done.stdout)

    def _set_password(self, password: str, user: str | None) -> None:
        """In single-user mode (the server is stopped): no connection is involved."""
        # token_urlsafe: only letters, digits, '-' and '_', nothing to escape.
        assert password.replace("-", "").replace("_", "").isalnum()
        self._pg(
            "postgres", "--single", "-D", str(self.pgdata), "-c", "exit_on_error=true",
            "-c", "password_encryption=scram-sha-256", SUPERUSER,
            user=user, input=f"ALTER ROLE {SUPERUSER} WITH PASSWORD '{password}';\n",
        )  # fmt: skip

    def _hba_text(self) -> str:
        try:
            return (self.pgdata / "pg_hba.conf").read_text()
        except FileNotFoundError:
            return ""

    def _write_hba(self, user: str | None) -> None:
        path = self.pgdata / "pg_hba.conf"
        partial = path.with_name("pg_hba.conf.mentara-tmp")
        partial.write_text(PG_HBA)
        partial.chmod(0o600)
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(partial, entry.pw_uid, entry.pw_gid)
        partial.replace(path)

    def _start_server(self, user: str | None) -> None:
        sockets = self.socket_dir
        sockets.mkdir(parents=True, exist_ok=True)
        sockets.chmod(0o700)
        if user is not None:
            import pwd

            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(sockets)
            entry = pwd.getpwnam(user)
            os.chown(sockets, entry.pw_uid, entry.pw_gid)
        options = " ".join(
            [
                "-h ''",  # no TCP address at all
                f"-k {shlex.quote(str(sockets))}",
                "-c unix_socket_permissions=0700",
                "-c password_encryption=scram-sha-256",
            ]
        )
        self._pg("pg_ctl", "-D", str(self.pgdata), "-w", "-t", str(_START_TIMEOUT_S), "-o", options,
                 "-l", str(self.pgdata / "log"), "start", user=user)  # fmt: skip

    def _psql(self, sql: str, password: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        info = self._running
        assert info is not None
        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", str(info.socket_dir), "-p", str(info.port or 5432), "-U", SUPERUSER,
             "-d", "postgres", "-c", sql],
            env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            raise EmbeddedError(f"embedded postgres refused {sql.split()[0]}: {done.stderr}")
        return done.stdout.strip()
