"""The README's configuration table lists exactly the variables the server reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import ConfigError, load_settings
from server.env_vars import ENV_VARS

ROOT = Path(__file__).resolve().parent.parent


def _readme_config_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|", section, flags=re.M)
    return dict(rows)


def test_readme_table_matches_the_variables_the_server_reads() -> None:
    rows = _readme_config_rows()
    assert set(rows) == {v.name for v in ENV_VARS}
    for var in ENV_VARS:
        assert var.default.strip("()") in rows[var.name], var.name


def test_every_variable_in_the_table_is_read_by_load_settings() -> None:
    source = (ROOT / "server" / "config.py").read_text()
    body = source.split("def load_settings", 1)[1]
    for var in ENV_VARS:
        if var.name == "PROMETHEUS_MULTIPROC_DIR":
            continue  # read by prometheus-client itself
        assert f'"{var.name}"' in body, f"{var.name} is documented but never read"


def test_bad_values_are_refused_with_the_variable_named() -> None:
    for name, value in [
        ("MENTARA_PORT", "eighty"),
        ("MENTARA_HEARTBEAT_S", "-1"),
        ("MENTARA_LOG_FORMAT", "xml"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})


def test_defaults() -> None:
    s = load_settings({})
    assert (s.database_url, s.redis_url) == (None, None)
    assert s.max_frame_bytes == 256 * 1024
    assert s.heartbeat_s == 20.0
    assert s.auth_timeout_s == 5.0
    assert load_settings({"MENTARA_JWT_AUTHORIZED_PARTIES": "a, b,"}).jwt_authorized_parties == (
        "a",
        "b",
    )
