"""The benchmark's own pieces: CPU and memory accounting over a process tree, the listener's
seq checks and lag window, the peers' pacing, the profile summary and the table."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.protocol import State

from bench.listener import (
    BareListener,
    ListenerStats,
    MentaraListener,
    SeqCheck,
    SocketIOListener,
    Window,
)
from bench.peers.script import PeerSession, coalesce_schedule, load_turns, tokenize
from bench.procstats import (
    MachineCpu,
    ProcSample,
    Snapshot,
    Usage,
    machine_cpu,
    process_cpu_between,
    rss,
    snapshot,
    tree_pids,
    usage_between,
)
from bench.profiling import parse_collapsed, summarize
from bench.results import BenchResult, IdleRun, StreamRun
from bench.table import COLUMNS, format_table
from loadtest.metrics import Histogram
from server.interviewer.offline_provider import tokenize as server_tokenize

# -- CPU and memory over a process tree ------------------------------------------------------


def _sample(pid: int, created: float, cpu: float, rss_bytes: int = 0) -> ProcSample:
    return ProcSample(pid, created, cpu, rss_bytes)


def _shot(at: float, **groups: list[ProcSample]) -> Snapshot:
    return Snapshot(at, {name: {s.key: s for s in samples} for name, samples in groups.items()})


def test_usage_counts_differences_new_processes_whole_and_reused_pids_as_new() -> None:
    before = _shot(
        0.0,
        server=[_sample(10, 1.0, 5.0, 100), _sample(11, 1.0, 2.0, 50), _sample(12, 1.0, 9.0)],
    )
    after = _shot(
        10.0,
        server=[
            _sample(10, 1.0, 7.5, 300),  # ran 2.5 s
            _sample(11, 2.0, 0.5, 70),  # pid 11 reused by a new process: all of its 0.5 s
            _sample(13, 3.0, 1.0, 30),  # started in between: all of its 1 s
        ],  # pid 12 ended in between: nothing more can be read of it
    )
    usage = usage_between(before, after)
    assert usage["server"] == Usage(cpu_s=4.0, rss=400, processes=3)
    assert rss(after, "server") == 400
    assert process_cpu_between(before, after, "server") == {10: 2.5, 11: 0.5, 13: 1.0}
    assert rss(after, "missing") == 0


def test_machine_cpu_in_cores_between_two_samples() -> None:
    busy, steal = MachineCpu(10.0, 100.0, 5.0).cores_between(MachineCpu(12.0, 103.0, 5.5))
    assert (busy, steal) == (1.5, 0.25)
    assert MachineCpu(1.0, 0, 0).cores_between(MachineCpu(1.0, 9, 9)) == (0.0, 0.0)
    assert machine_cpu(time.monotonic()).busy_s > 0


def test_a_process_in_two_groups_counts_in_the_first_only() -> None:
    me = os.getpid()
    shot = snapshot({"server": [me], "client": [me, 2**22 + 12345]}, time.monotonic())
    assert len(shot.groups["server"]) == 1
    assert shot.groups["client"] == {}  # the duplicate is skipped, the dead pid too


def test_cpu_and_memory_of_a_real_process_tree() -> None:
    burn = (
        "import time\n"
        "block = bytearray(64 * 2**20)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"
        "end = time.process_time() + 0.4\n"
        "while time.process_time() < end: pass\n"
        "print('done', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", burn], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        pids = tree_pids(os.getpid())
        assert child.pid in pids and pids[0] == os.getpid()
        before = snapshot({"tree": tree_pids(os.getpid())}, time.monotonic())
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "done"
        after = snapshot({"tree": tree_pids(os.getpid())}, time.monotonic())
        usage = usage_between(before, after)["tree"]
        assert usage.cpu_s >= 0.3  # the child's 0.4 s of CPU (minus what ran before `before`)
        assert usage.processes >= 2
        assert rss(after, "tree") - rss(before, "tree") > 32 * 2**20
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert tree_pids(child.pid) == []


# -- the listener ------------------------------------------------------------------------------


def test_seq_check_finds_gaps_and_duplicates() -> None:
    check = SeqCheck()
    seen = [check.observe(s) for s in (1, 2, 2, 5, 3, 6, 9)]
    assert seen == [
        (0, False),
        (0, False),
        (0, True),
        (2, False),
        (0, True),
        (0, False),
        (2, False),
    ]


class _Recorder:
    """Stands in for the socket: what a listener sends is recorded, not written."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def record(self, text: str | bytes) -> None:
        self.sent.append(text.encode() if isinstance(text, str) else text)


def _event(kind: str, seq: int, ts: int, **extra: Any) -> bytes:
    return msgspec.json.encode({"type": kind, "seq": seq, "ts": ts, **extra})


async def test_mentara_listener_checks_seqs_records_lag_in_the_window_and_replies() -> None:
    stats = ListenerStats()
    now = [1000.0]
    listener = MentaraListener(
        "ws://127.0.0.1:9/v1/interview",
        stats,
        Window(start=1000.0, end=1001.0),
        think_s=0.0,
        session="s1",
        token="t",
        question_id="two-sum",
    )
    listener.clock = lambda: now[0]
    sent = _Recorder()
    listener.send_text = sent.record  # type: ignore[method-assign]
    listener.protocol.state = State.OPEN  # as after the handshake

    listener.on_message(msgspec.json.encode({"type": "welcome", "user_id": "u"}), True)
    assert msgspec.json.decode(sent.sent[0])["type"] == "session.start"
    assert msgspec.json.decode(sent.sent[0])["question_id"] == "two-sum"

    frames = [
        _event("session.started", 1, 999_980),
        msgspec.json.encode({"type": "ack", "ref": "x", "seq": 1}),  # not a session event
        _event("interviewer.delta", 2, 999_990),
        _event("interviewer.delta", 2, 999_990),  # duplicate
        _event("interviewer.delta", 5, 999_995),  # 3 and 4 are missing
        msgspec.json.encode({"type": "error", "code": "rate_limited", "message": "slow"}),
        _event("interviewer.turn.end", 6, 1_000_000),
    ]
    for frame in frames:
        listener.on_message(frame, True)
    now[0] = 1002.0  # past the window: counted, not timed
    listener.on_message(_event("interviewer.delta", 7, 1_001_000), True)

    assert (stats.events, stats.window_events, stats.gaps, stats.dups) == (6, 5, 2, 1)
    assert stats.started == 1
    assert stats.errors == Counter({"error.rate_limited": 1})
    assert stats.lag.count == 5 and stats.lag.max == pytest.approx(20.0)
    await asyncio.sleep(0.01)  # the reply after think_s
    assert stats.replies == 1
    assert msgspec.json.decode(sent.sent[-1])["type"] == "candidate.message"
    listener.close_code = 1011
    listener.on_close()
    assert stats.errors["close.1011"] == 1


async def test_socketio_listener_speaks_engineio_and_checks_seqs() -> None:
    stats = ListenerStats()
    listener = SocketIOListener(
        "ws://127.0.0.1:9/socket.io/?EIO=4&transport=websocket",
        stats,
        Window(0.0, 1e12),
        think_s=0.0,
        session="room-1",
    )
    sent = _Recorder()
    listener.send_text = sent.record  # type: ignore[method-assign]
    listener.on_message(b'0{"sid":"abc","upgrades":[],"pingInterval":25000}', True)
    listener.on_message(b'40{"sid":"def"}', True)
    listener.on_message(b"2", True)
    assert sent.sent == [b"40", b'42["start",{"session":"room-1"}]', b"3"]
    for seq in (1, 2, 4, 4):
        body = msgspec.json.encode(["event", {"type": "interviewer.delta", "seq": seq, "ts": 1}])
        listener.on_message(b"42" + body, True)
    listener.on_message(b'44{"message":"refused"}', True)
    assert (stats.events, stats.gaps, stats.dups) == (4, 1, 1)
    assert stats.errors == Counter({"error.connect_error": 1})


async def test_bare_listener_starts_on_open_without_a_welcome() -> None:
    stats = ListenerStats()
    listener = BareListener("ws://127.0.0.1:9/", stats, Window(0, 0), think_s=0.0, session="b")
    sent = _Recorder()
    listener.send_text = sent.record  # type: ignore[method-assign]
    listener.on_open()
    assert msgspec.json.decode(sent.sent[0])["type"] == "session.start"


def test_listener_stats_survive_the_trip_between_processes() -> None:
    a = ListenerStats(events=3, window_events=2, gaps=1, started=1, errors=Counter({"x": 1}))
    a.lag.record(5.0)
    a.lag.record(50.0)
    b = ListenerStats.from_dict(a.to_dict())
    assert b.to_dict() == a.to_dict()
    b.merge(a)
    assert (b.events, b.gaps, b.lag.count, b.errors["x"]) == (6, 2, 4, 2)


# -- the peers' script -------------------------------------------------------------------------


def test_peers_tokenize_as_the_offline_provider_and_coalesce_as_the_server() -> None:
    turns = load_turns("two-sum")
    for text in (turns.intro, turns.present, *turns.acknowledge):
        assert tokenize(text) == server_tokenize(text)
    schedule = [(round(t, 6), n) for t, n in coalesce_schedule(5, 40.0, 0.030)]
    # Tokens due at 0, 25, 50, 75, 100 ms; ticks every 30 ms: the first at once, then one a
    # tick (at 40 tokens a second every tick has one), as the server's ticked coalescer.
    assert schedule == [(0.0, 1), (0.03, 1), (0.06, 1), (0.09, 1), (0.12, 1)]
    assert [n for _, n in coalesce_schedule(6, 100.0, 0.030)] == [1, 3, 2]
    assert coalesce_schedule(0, 40.0, 0.03) == []
    assert sum(n for _, n in coalesce_schedule(101, 40.0, 0.03)) == 101


async def test_a_peer_session_numbers_its_events_and_speaks_turn_by_turn() -> None:
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    turns = load_turns("two-sum")
    session = PeerSession("s", emit, turns, tokens_per_s=4000.0, window_s=0.001)
    await session.begin()
    await session.heard("hello")
    for _ in range(200):
        if sum(e["type"] == "interviewer.turn.end" for e in events) == 3:
            break
        await asyncio.sleep(0.01)
    await session.stop()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["session.started", "candidate.message", "interviewer.turn.start"]
    assert kinds.count("interviewer.turn.end") == 3 and "phase" in kinds
    first_turn = [e["text"] for e in events if e.get("turn_id") == "i1" and "text" in e]
    assert "".join(first_turn) == turns.intro


# -- profile summary ---------------------------------------------------------------------------


def test_profile_summary_ranks_self_and_inclusive_time(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "run (asyncio/runners.py:118);append (log.py:120);call (redis/client.py:10) 6\n"
        "run (asyncio/runners.py:118);append (log.py:126) 2\n"
        "run (asyncio/runners.py:118);send (uvicorn/ws.py:7) 2\n"
        "garbage line\n"
    )
    assert len(parse_collapsed(raw.read_text())) == 3
    summary = summarize(raw, duration_s=1.0, rate=20)
    assert summary["samples"] == 10
    assert summary["self"][0] == ["call (redis/client.py)", 0.6]
    inclusive = dict((name, share) for name, share in summary["inclusive"])
    assert inclusive["append (log.py)"] == 0.8  # lines 120 and 126 merge
    assert inclusive["run (asyncio/runners.py)"] == 1.0
    assert summary["active_share"] == 0.5


# -- the table ---------------------------------------------------------------------------------


def _run(
    system: str, sessions: int, events: int, cpu: float, lag_ms: float, **kw: Any
) -> StreamRun:
    stats = ListenerStats(
        events=events, window_events=events, started=sessions, active_at_window=sessions
    )
    hist = Histogram()
    for _ in range(100):
        hist.record(lag_ms)
    stats.lag = hist
    usage = {
        "server": Usage(cpu * 0.7, 200 * 2**20, 3),
        "redis": Usage(cpu * 0.2, 10 * 2**20, 1),
        "postgres": Usage(cpu * 0.1, 50 * 2**20, 5),
        "client": Usage(99.0, 1, 1),  # never charged to the server
    }
    return StreamRun(system, sessions, 10.0, stats, usage, **kw)


def test_the_table_has_a_row_per_run_and_a_verdict_per_goal() -> None:
    ladder = [
        _run("mentara", 100, 20_000, 2.0, 20.0),
        _run("mentara", 250, 50_000, 5.0, 150.0),
    ]
    result = BenchResult(
        ladder=ladder,
        efficiency=ladder[0],
        peers=[
            _run("python-socketio", 100, 20_000, 8.0, 40.0, label="peer"),
            _run("websockets", 100, 20_000, 1.0, 5.0, label="peer"),
        ],
        idle=IdleRun(10_000, 10_000, 10_000, 100 * 2**20, 300 * 2**20, 6.0, 2.0),
    )
    assert ladder[0].events_per_cpu_s == pytest.approx(10_000)  # 20,000 events / 2 s of server CPU
    assert ladder[0].server_cpu_per_client_cpu == pytest.approx(2.0 / 99.0)
    assert ladder[0].passes and not ladder[1].passes and result.largest_passing == 100
    assert result.ratio("python-socketio") == pytest.approx(4.0)
    table = format_table(result)
    lines = table.splitlines()
    assert all(column in lines[0] for column in COLUMNS)
    rows = lines[2 : lines.index("")]
    assert [r.split()[0] for r in rows] == [
        "streaming",
        "streaming",
        "efficiency",
        "peer",
        "peer",
        "idle",
    ]
    assert "FAIL p99 >= 100 ms" in rows[1]
    assert "20.5 KiB/socket" in rows[-1]
    assert "largest S with p99 < 100 ms and a clean stream: 100 (tried 100, 250)" in table
    assert "goal S >= 1,000: NOT met" in table
    assert "10,000 events per server CPU-second at S=100; goal >= 12,500: NOT met" in table
    assert "vs python-socketio: 4.00x" in table and "vs websockets: 0.50x" in table
    assert "goal <= 30 KiB: met" in table


def test_an_unclean_run_fails_whatever_its_lag() -> None:
    run = _run("mentara", 100, 1000, 1.0, 1.0)
    run.stats.gaps = 1
    assert not run.passes
    run.stats.gaps = 0
    run.stats.active_at_window = 99
    assert not run.passes
    assert "99/100 streaming" in format_table(BenchResult(ladder=[run]))


# -- the command line --------------------------------------------------------------------------


def test_the_command_line_builds_quick_and_chosen_configs(tmp_path: Path) -> None:
    from bench.cli import build_parser, config_from_args

    parser = build_parser()
    quick = config_from_args(parser.parse_args(["--quick"]), tmp_path)
    assert quick.ladder == (20, 50) and quick.idle_sockets == 500 and not quick.profile
    chosen = config_from_args(
        parser.parse_args(
            ["--ladder", "10,30", "--think", "5", "--workloads", "streaming,idle", "--no-profile"]
        ),
        tmp_path,
    )
    assert chosen.ladder == (10, 30) and chosen.think_s == 5.0
    assert chosen.workloads == ("streaming", "idle") and not chosen.profile
    with pytest.raises(SystemExit):
        parser.parse_args(["--workloads", "nonsense"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--ladder", "0,x"])
