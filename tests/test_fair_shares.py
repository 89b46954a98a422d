"""Fair shares (issue #10): one user cannot hold more than their share of the service.

Each test is an attack that worked before the limits existed: a user starting session after
session, a socket queueing ``code.run`` behind a running one, hostile accounts flooding the
worker's run slots, a user running code without pause. Real servers, real runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from protocol.client import InterviewClient, ServerErrorReply, open_client
from protocol.messages import (
    Ack,
    CodeResult,
    CodeRun,
    CodeUpdate,
    Error,
    Ping,
    Pong,
    ServerFrame,
    SessionEnd,
    SessionResume,
    SessionStart,
    SessionStarted,
    Track,
)
from server.config import Settings
from server.sessions.manager import SessionManager
from tests.interview_support import events, read_until
from tests.support import RunningServer, running_server

pytestmark = pytest.mark.timeout(120)

TWO_SUM = (
    "def two_sum(nums, target):\n"
    "    seen = {}\n"
    "    for i, n in enumerate(nums):\n"
    "        if target - n in seen:\n"
    "            return [seen[target - n], i]\n"
    "        seen[n] = i\n"
)
SLOW = "import time\n\ndef two_sum(nums, target):\n    time.sleep({s})\n    return []\n"


def fast(settings: Settings, **limits: object) -> Settings:
    return settings.with_(offline_tokens_per_s=2000.0, coalesce_ms=5.0, **limits)


def manager_of(server: RunningServer) -> SessionManager:
    manager = server.app.state.resources.sessions
    assert isinstance(manager, SessionManager)
    return manager


async def start(client: InterviewClient, start_id: str, track: Track = "behavioral") -> str:
    extra = {"question_id": "two-sum"} if track == "coding" else {}
    await client.request(SessionStart(id=start_id, track=track, **extra))
    frames = await read_until(client, lambda f: isinstance(f, SessionStarted))
    started = next(e for e in events(frames) if isinstance(e, SessionStarted))
    return started.session_id


async def refused(client: InterviewClient, frame: SessionStart | CodeRun) -> Error:
    with pytest.raises(ServerErrorReply) as caught:
        await client.request(frame)
    return caught.value.error


async def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``check`` (state inside the server: nothing to wait on from here)."""
    async with asyncio.timeout(timeout):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def test_live_sessions_and_starts_per_user_are_bounded_across_workers(
    settings: Settings,
) -> None:
    """Three live sessions at most, six starts a minute, counted over two workers; a
    repeated start still re-attaches; ending a session frees its place; what a refused or
    ended session held on the worker is released."""
    limited = fast(settings, live_sessions_per_user=3, session_starts_per_min=6)
    user = f"greedy-{uuid.uuid4().hex[:6]}"
    async with running_server(limited) as a, running_server(limited) as b:
        clients: list[InterviewClient] = []
        try:
            for i in range(7):
                server = (a, b)[i % 2]
                clients.append(
                    await InterviewClient.connect(server.ws_url(), token=server.token(user))
                )
            sessions = [await start(clients[i], f"s{i}") for i in range(3)]  # a, b, a

            error = await refused(clients[3], SessionStart(id="s3", track="behavioral"))
            assert (error.code, error.retryable) == ("rate_limited", True), error
            assert "live" in error.message
            # Refused: nothing of it stays on the worker.
            assert set(manager_of(b).owned) == {sessions[1]}
            assert set(manager_of(b).channels) == {sessions[1]}
            # Another user is not affected.
            async with open_client(b.ws_url(), token=b.token(user + "-other")) as other:
                await start(other, "o1")
                await other.request(SessionEnd(id="o1-end"))

            # A repeated start re-attaches to its session, at the cap too (PROTOCOL.md §2).
            again = await clients[3].request(SessionStart(id="s0", track="behavioral"))
            assert again.seq == 1

            # Ending one frees its place, on any worker; what it held is released.
            await clients[0].request(SessionEnd(id="e0"))
            await start(clients[4], "s4")
            await wait_until(lambda: sessions[0] not in manager_of(a).owned)

            # Starts per minute: s0, s1, s2, s4 so far, and two more after ending two.
            for n, index in ((1, 5), (2, 6)):
                await clients[n].request(SessionEnd(id=f"e{n}"))
                await start(clients[index], f"s{index}")
            await clients[4].request(SessionEnd(id="e4"))
            error = await refused(clients[4], SessionStart(id="s7", track="behavioral"))
            assert (error.code, error.retryable) == ("rate_limited", True), error
            assert "minute" in error.message
            for n in (5, 6):
                await clients[n].request(SessionEnd(id=f"e{n}"))
        finally:
            for client in clients:
                await client.close()
        for server in (a, b):
            manager = manager_of(server)
            await wait_until(lambda m=manager: not m.owned, timeout=30)  # type: ignore[misc]
            await wait_until(lambda m=manager: not m.channels)  # type: ignore[misc]


async def test_a_second_code_run_while_one_is_pending_is_refused_at_once(
    settings: Settings,
) -> None:
    """The socket's reader is not held by a run: a second ``code.run`` of the session is
    refused while the first is pending (on any socket of the session), a ping is answered
    meanwhile, and the first run's result is the only one."""
    async with running_server(fast(settings)) as server:
        token = server.token(f"queuer-{uuid.uuid4().hex[:6]}")
        async with (
            open_client(server.ws_url(), token=token) as c,
            open_client(server.ws_url(), token=token) as second_device,
        ):
            session_id = await start(c, "s", track="coding")
            await c.request(CodeUpdate(id="v1", language="python", source=SLOW.format(s=0.5)))
            await second_device.send(SessionResume(session_id=session_id, last_seq=0))
            await c.send(CodeRun(id="r1"))
            await c.send(CodeRun(id="r2"))
            await c.send(Ping(id="p"))
            await asyncio.sleep(0.2)
            await second_device.send(CodeRun(id="r3"))
            frames: list[ServerFrame] = await read_until(
                c, lambda f: isinstance(f, CodeResult), timeout=30
            )
            order = [_label(f) for f in frames if _label(f)]
            assert order.index("error r2 rate_limited") < order.index("code.result")
            assert order.index("pong") < order.index("code.result")
            late = await read_until(
                second_device, lambda f: isinstance(f, Error) and f.ref == "r3", timeout=30
            )
            assert any(isinstance(f, CodeResult) for f in late) is False
            error = late[-1]
            assert isinstance(error, Error) and error.code == "rate_limited" and error.retryable
            await read_until(c, lambda f: isinstance(f, Ack) and f.ref == "r1")
            # Once it is done, the next run is accepted.
            await c.request(CodeRun(id="r4"))


def _label(frame: ServerFrame) -> str:
    match frame:
        case Error(ref=ref, code=code):
            return f"error {ref} {code.value}"
        case Pong():
            return "pong"
        case CodeResult():
            return "code.result"
        case Ack(ref=ref):
            return f"ack {ref}"
    return ""


@pytest.fixture
async def run_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(fast(settings, code_runs=2, code_runs_per_min=10_000)) as server:
        yield server


async def timed_run(client: InterviewClient, run_id: str) -> float:
    """Seconds from sending ``code.run`` to its ``code.result``."""
    began = time.perf_counter()
    await client.send(CodeRun(id=run_id))
    frames = await read_until(client, lambda f: isinstance(f, CodeResult), timeout=60)
    elapsed = time.perf_counter() - began
    for frame in frames:
        if isinstance(frame, Error) and frame.ref == run_id:
            raise AssertionError(f"run refused: {frame}")
    return elapsed


async def test_six_hostile_accounts_delay_a_candidates_run_by_one_run_at_most(
    run_server: RunningServer,
) -> None:
    """Six accounts keep the worker's two run slots busy with slow runs, each sending the
    next ``code.run`` the moment it may. A candidate's run (right code) answers within two
    runs' time, a run's time measured here on a hostile run alone."""
    server = run_server
    hostile: list[InterviewClient] = []
    stop = asyncio.Event()
    runs_done = [0]
    refusals: list[str] = []

    async def flood(client: InterviewClient, name: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await client.request(CodeRun(id=f"{name}-{n}"), timeout=60)
                runs_done[0] += 1
            except ServerErrorReply as exc:
                refusals.append(exc.error.code.value)
                await asyncio.sleep(0.02)

    try:
        for i in range(6):
            c = await InterviewClient.connect(server.ws_url(), token=server.token(f"hostile-{i}"))
            hostile.append(c)
            await start(c, "s", track="coding")
            await c.request(CodeUpdate(id="v", language="python", source=SLOW.format(s=0.4)))
        one_run = await timed_run(hostile[0], "alone")
        async with open_client(server.ws_url(), token=server.token("candidate")) as cand:
            await start(cand, "s", track="coding")
            await cand.request(CodeUpdate(id="v", language="python", source=TWO_SUM))
            floods = [asyncio.create_task(flood(c, f"h{i}")) for i, c in enumerate(hostile)]
            try:
                await asyncio.sleep(1.5 * one_run)  # the slots are busy and runs wait
                waited = await timed_run(cand, "mine")
            finally:
                stop.set()
                await asyncio.gather(*floods, return_exceptions=True)
        ratio = waited / one_run
        print(f"one run {one_run:.2f} s; the candidate's run under flood {waited:.2f} s "
              f"({ratio:.2f} runs); hostile runs done {runs_done[0]}")  # fmt: skip
        assert runs_done[0] >= 4
        assert set(refusals) <= {"rate_limited"}, refusals
        assert ratio <= 2.0, f"the candidate waited {ratio:.2f} runs' time"
    finally:
        for c in hostile:
            await c.close()


async def test_runs_per_minute_per_user(settings: Settings) -> None:
    async with running_server(fast(settings, code_runs_per_min=3)) as server:
        user = f"runner-{uuid.uuid4().hex[:6]}"
        async with open_client(server.ws_url(), token=server.token(user)) as c:
            await start(c, "s", track="coding")
            await c.request(CodeUpdate(id="v", language="python", source=TWO_SUM))
            for n in range(3):
                await timed_run(c, f"r{n}")
            error = await refused(c, CodeRun(id="r3"))
            assert (error.code, error.retryable) == ("rate_limited", True), error
            assert "minute" in error.message
