"""Files of the data folder that more than one embedded piece needs: generated secrets and
short folders for unix sockets."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Final

JWT_SECRET_FILE: Final = "jwt-secret"
"""The development HS256 secret's file in the data folder (see ``server.embedded``)."""

_SOCKET_PATH_MAX: Final = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def short_socket_dir(data_dir: Path, name: str, socket_name: str) -> Path:
    """A folder for unix socket ``socket_name``: ``data_dir/name`` when the socket's path is
    short enough, else one under the system's temporary folder named after a hash of
    ``data_dir``."""
    candidate = data_dir / name
    if len(str(candidate / socket_name)) <= _SOCKET_PATH_MAX:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mentara-{digest}" / name


def stored_secret(path: Path) -> tuple[str, bool]:
    """The secret kept in ``path``, generated on first use (mode 0600); and whether this call
    generated it. Concurrent first calls agree on one secret (an atomic link)."""
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    try:
        os.link(partial, path)  # atomic: exactly one concurrent first start wins
    except FileExistsError:
        return path.read_text().strip(), False
    finally:
        partial.unlink(missing_ok=True)
    return secret, True
