"""``mentara load`` end to end: a real server in this process, the harness on the same loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from loadtest.config import LoadConfig
from loadtest.report import METRICS, format_table, write_results
from loadtest.runner import EXIT_OK, EXIT_UNVERIFIED, run_in_process
from server.config import Settings
from tests.support import TEST_SECRET, running_server


async def test_a_short_run_is_clean_and_leaves_its_results(
    settings: Settings, tmp_path: Path
) -> None:
    fast = settings.with_(offline_tokens_per_s=400.0, coalesce_ms=10.0)
    lines: list[str] = []
    async with running_server(fast) as server:
        config = LoadConfig(
            urls=(f"ws://127.0.0.1:{server.port}",),
            token_secret=TEST_SECRET,
            sessions=5,
            duration_s=6.0,
            ramp_up_s=0.5,
            think_time_s=0.3,
            code_every_s=1.0,
            run_every_s=2.5,
            resume_rate=30.0,
            mix=(("coding", 1.0),),
            subprotocol="mixed",
            grace_s=10.0,
            progress_every_s=1.0,
            run_id="e2e",
        ).validate()
        result = await run_in_process(config, out=lines.append)

    counters = result.metrics.counters
    table = format_table(result)
    assert result.integrity_errors == 0, (table, result.issues)
    assert result.exit_code == EXIT_OK, table
    assert counters["sessions.started"] == 5, table
    assert counters["sessions.completed"] == 5, table
    assert counters["events.live"] > 0
    assert counters["resume.ok"] >= 1, table
    assert counters["sent.code.run"] >= 5, table
    assert counters["transcript.turns_verified"] > 0, table
    for name in ("connect_ms", "lag_ms", "ack_ms", "first_delta_ms", "code_run_ms", "resume_ms"):
        assert result.metrics.histograms[name].count > 0, name
    for _, label in METRICS:
        assert label in table
    assert lines and all(line.startswith("load: t=") for line in lines)

    json_path, png_path = write_results(result, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["integrity_errors"] == 0
    assert data["summary"]["lag_ms"]["count"] == counters["events.live"]
    assert "token_secret" not in data["config"]
    assert TEST_SECRET not in json_path.read_text()
    assert data["timeseries"] and any(row["events"] for row in data["timeseries"])
    assert png_path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_a_server_that_never_answers_cannot_hold_the_run_past_its_deadline() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_stay_silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    config = LoadConfig(
        urls=(f"ws://127.0.0.1:{port}",),
        token_secret=TEST_SECRET,
        sessions=3,
        duration_s=1.0,
        ramp_up_s=0.0,
        grace_s=5.0,
        run_id="silent",
    ).validate()
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        result = await run_in_process(config, out=lambda line: None)
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert loop.time() - began < config.deadline_s + 3
    assert result.metrics.counters["harness.hard_stop"] == 1
    assert result.metrics.counters["sessions.unfinished"] == 3
    assert result.exit_code == EXIT_UNVERIFIED
