"""Any worker serves any socket (issue 4): real `mentara serve` processes, one Redis, one Postgres.

The candidate's phone on worker A, their laptop on worker B, an admin watching from B; A is
killed with SIGKILL mid-turn; the phone resumes on B and the interview finishes there. Every
socket's seqs run without gap or duplicate, and the cut turn is ended with ``error``, stored
as delivered.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from protocol.client import (
    ConnectionClosedByServer,
    InterviewClient,
    ServerErrorReply,
    open_client,
)
from protocol.messages import (
    CandidateMessage,
    CandidateSaid,
    CodeUpdate,
    InterviewerDelta,
    InterviewerTurnEnd,
    ReportReady,
    Resumed,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
    Watch,
)
from server.dev_tokens import mint_dev_token
from tests.interview_support import assert_gap_free, stored_turns
from tests.support import (
    TEST_SECRET,
    Services,
    database_of_its_own,
    serve_env,
    serving,
    wait_ready,
)


class Stream:
    """Every session event one socket received, across its reconnects, in order."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def add(self, frames: list[ServerFrame]) -> None:
        self.events += [f for f in frames if isinstance(f, SessionEvent)]

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


async def pump(
    client: InterviewClient, stream: Stream, until: type, *, timeout: float = 30.0
) -> None:
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.recv(timeout=None)
            stream.add([frame])
            if isinstance(frame, until):
                return


async def drain(client: InterviewClient, stream: Stream, seconds: float) -> None:
    """Keep what arrives for ``seconds`` or until the socket drops."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                stream.add([await client.recv(timeout=None)])
    except (TimeoutError, ConnectionClosedByServer):
        pass


@dataclass
class TwoWorkers:
    proc_a: subprocess.Popen[str]
    port_a: int
    port_b: int


@pytest.fixture
def two_workers(services: Services, tmp_path: Path) -> Iterator[TwoWorkers]:
    env = serve_env(services, tmp_path, f"cl{uuid.uuid4().hex[:8]}:", MENTARA_LEASE_MS="1500")
    with serving(env=env) as (proc_a, port_a), serving(env=env) as (_proc_b, port_b):
        yield TwoWorkers(proc_a, port_a, port_b)


async def test_kill_the_owner_mid_turn_and_finish_on_the_other_worker(
    two_workers: TwoWorkers, services: Services
) -> None:
    proc_a, port_a, port_b = two_workers.proc_a, two_workers.port_a, two_workers.port_b
    for port in (port_a, port_b):
        assert (await wait_ready(port)).status_code == 200
    user = f"u-{uuid.uuid4().hex[:8]}"
    token = mint_dev_token(TEST_SECRET, user)
    admin = mint_dev_token(TEST_SECRET, "ops", admin=True)
    url_a = f"ws://127.0.0.1:{port_a}/v1/interview"
    url_b = f"ws://127.0.0.1:{port_b}/v1/interview"

    phone_stream, laptop_stream, admin_stream = Stream(), Stream(), Stream()
    phone = await InterviewClient.connect(url_a, token=token)
    await phone.send(SessionStart(id="start", track="coding"))
    await pump(phone, phone_stream, InterviewerDelta)
    started = phone_stream.events[0]
    assert isinstance(started, SessionStarted)
    session_id = started.session_id

    async with (
        open_client(url_b, token=token) as laptop,
        open_client(f"ws://127.0.0.1:{port_b}/v1/admin/watch", token=admin) as watcher,
    ):
        await laptop.send(SessionResume(session_id=session_id, last_seq=0))
        assert isinstance(await laptop.recv(), Resumed)
        await watcher.send(Watch(session_id=session_id))
        assert isinstance(await watcher.recv(), Resumed)
        await pump(laptop, laptop_stream, InterviewerDelta)
        await pump(watcher, admin_stream, InterviewerDelta)
        await pump(phone, phone_stream, InterviewerDelta)

        # Worker A dies mid-sentence.
        proc_a.send_signal(signal.SIGKILL)
        proc_a.wait(timeout=10)
        await drain(phone, phone_stream, 0.5)
        await phone.close()

        # The phone comes back through worker B and resumes where it was.
        async with open_client(url_b, token=token) as phone_again:
            await phone_again.send(
                SessionResume(session_id=session_id, last_seq=phone_stream.last_seq)
            )
            resumed = await phone_again.recv()
            assert isinstance(resumed, Resumed)
            # B takes the session over once A's lease expires and ends the cut turn.
            await pump(phone_again, phone_stream, InterviewerTurnEnd)
            cut = phone_stream.events[-1]
            assert isinstance(cut, InterviewerTurnEnd)
            assert cut.stop_reason == "error"
            # The interview goes on, on B.
            ack = await phone_again.request(
                CandidateMessage(id="after", text="Can you hear me now?")
            )
            assert ack.seq is not None
            await pump(phone_again, phone_stream, InterviewerTurnEnd)
            await phone_again.request(SessionEnd(id="end"))
            await pump(phone_again, phone_stream, SessionEnded)
        await pump(laptop, laptop_stream, SessionEnded)
        await pump(watcher, admin_stream, SessionEnded)

    for stream in (phone_stream, laptop_stream, admin_stream):
        assert_gap_free(stream.events)
    # Every socket saw the same session, event for event.
    assert [e.seq for e in laptop_stream.events] == [e.seq for e in admin_stream.events]
    assert laptop_stream.events == admin_stream.events == phone_stream.events

    # Postgres has every event (the dead owner's unflushed ones were backfilled from Redis),
    # and the cut turn is stored as exactly what was delivered.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as http:
        body = (
            await http.get(
                f"/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {token}"}
            )
        ).json()
        metrics_text = (await http.get("/metrics")).text
    assert body["session"]["status"] == "ended"
    # B's metrics tell the story: it took the session over, resumed sockets from history,
    # and received A's events through pub/sub.
    assert metric(metrics_text, "mentara_lease_takeovers_total") >= 1
    assert metric(metrics_text, "mentara_publish_to_deliver_seconds_count") > 0
    assert (
        sum(
            metric(metrics_text, "mentara_resumes_total", source=s)
            for s in ("memory", "redis", "postgres")
        )
        >= 2
    )
    stored = {t["turn_id"]: t for t in await stored_turns(services.database_url, session_id)}
    delivered = "".join(
        e.text
        for e in phone_stream.events
        if isinstance(e, InterviewerDelta) and e.turn_id == cut.turn_id
    )
    assert stored[cut.turn_id]["text"] == delivered
    assert stored[cut.turn_id]["stop_reason"] == "error"


async def test_an_input_logged_but_not_yet_committed_when_its_owner_dies_is_applied_once(
    services: Services, tmp_path: Path
) -> None:
    """Owner A logs the candidate's input (Redis has the event, every socket sees it) and is
    SIGKILLed before its write-behind commits, so the input was never acked. The candidate
    sends it again through B, as the protocol says for an unacked input: B, taking over,
    finds the input's id where the append recorded it, answers with the original seq and
    applies nothing twice; Postgres gets the input's row with the backfill."""
    prefix = f"cl{uuid.uuid4().hex[:8]}:"
    # A commits slowly (the window between the event and its commit is 3 s, not 10 ms).
    env_a = serve_env(services, tmp_path / "a", prefix, MENTARA_LEASE_MS="1500",
                      MENTARA_WRITE_BATCH_MS="3000")  # fmt: skip
    env_b = serve_env(services, tmp_path / "b", prefix, MENTARA_LEASE_MS="1500")
    with serving(env=env_a) as (proc_a, port_a), serving(env=env_b) as (_proc_b, port_b):
        for port in (port_a, port_b):
            assert (await wait_ready(port)).status_code == 200
        user = f"u-{uuid.uuid4().hex[:8]}"
        token = mint_dev_token(TEST_SECRET, user)
        stream = Stream()
        phone = await InterviewClient.connect(f"ws://127.0.0.1:{port_a}/v1/interview", token=token)
        await phone.request(SessionStart(id="start", track="coding"), timeout=20)
        await pump(phone, stream, InterviewerTurnEnd)
        started = stream.events[0]
        assert isinstance(started, SessionStarted)
        await phone.send(CandidateMessage(id="only-once", text="I would use a hash map."))
        await pump(phone, stream, CandidateSaid)  # logged and delivered; no ack yet
        said = stream.events[-1]
        proc_a.send_signal(signal.SIGKILL)
        proc_a.wait(timeout=10)
        await phone.close()

        async with open_client(f"ws://127.0.0.1:{port_b}/v1/interview", token=token) as again:
            await again.send(SessionResume(session_id=started.session_id, last_seq=said.seq))
            assert isinstance(await again.recv(), Resumed)
            for _ in range(10):  # B answers "retry" until A's lease has run out
                try:
                    ack = await again.request(
                        CandidateMessage(id="only-once", text="I would use a hash map."),
                        timeout=30,
                    )
                    break
                except ServerErrorReply as exc:
                    if not exc.error.retryable:
                        raise
            else:
                raise AssertionError("B never took the session over")
            assert ack.seq == said.seq
            await again.request(SessionEnd(id="end"), timeout=30)
            await pump(again, stream, SessionEnded)

    said_events = [e for e in stream.events if isinstance(e, CandidateSaid)]
    assert [e.seq for e in said_events] == [said.seq]
    stored = await stored_turns(services.database_url, started.session_id)
    assert [t["text"] for t in stored if t["role"] == "candidate"] == ["I would use a hash map."]
    conn = await asyncpg.connect(services.database_url)
    try:
        seq = await conn.fetchval(
            "SELECT seq FROM client_inputs WHERE session_id = $1 AND input_id = 'only-once'",
            started.session_id,
        )
    finally:
        await conn.close()
    assert seq == said.seq


SLOW_TWO_SUM = """import time

def two_sum(nums, target):
    time.sleep(0.5)
    seen = {}
    for i, n in enumerate(nums):
        if target - n in seen:
            return [seen[target - n], i]
        seen[n] = i
    return []
"""


@pytest.fixture
async def own_database(services: Services) -> AsyncIterator[Services]:
    async with database_of_its_own(services) as own:
        yield own


async def test_a_report_left_unwritten_by_a_dead_owner_is_written_by_another_worker(
    own_database: Services, tmp_path: Path
) -> None:
    """Owner A acks ``session.end`` and is SIGKILLed while it runs the hidden tests (the
    candidate's code sleeps half a second per call, so the report is seconds away). Nobody
    takes over an ended session; B's report sweep finds it pending, takes its lease once A's
    has run out, and writes the report: the laptop on B gets ``report.ready``, and the
    report is there to fetch.

    The cluster gets a database of its own: a sweep writes the report of every session of
    its database left without one, and the run's shared database holds sessions that other
    tests ended and stopped their servers before their reports were written. Within reach,
    B (or A, killed half-way through one) wrote those too, and B's count of recovered
    reports depended on what ran before and how fast: 2 instead of 1."""
    services = own_database
    prefix = f"cl{uuid.uuid4().hex[:8]}:"
    env = serve_env(services, tmp_path, prefix, MENTARA_LEASE_MS="1000",
                    MENTARA_REPORT_RETRY_S="1", MENTARA_OFFLINE_TOKENS_PER_S="400")  # fmt: skip
    with serving(env=env) as (proc_a, port_a), serving(env=env) as (_proc_b, port_b):
        for port in (port_a, port_b):
            assert (await wait_ready(port)).status_code == 200
        user = f"u-{uuid.uuid4().hex[:8]}"
        token = mint_dev_token(TEST_SECRET, user)
        phone_stream, laptop_stream = Stream(), Stream()
        phone = await InterviewClient.connect(f"ws://127.0.0.1:{port_a}/v1/interview", token=token)
        await phone.request(
            SessionStart(id="start", track="coding", question_id="two-sum"), timeout=20
        )
        await pump(phone, phone_stream, InterviewerTurnEnd)
        started = phone_stream.events[0]
        assert isinstance(started, SessionStarted)
        async with open_client(f"ws://127.0.0.1:{port_b}/v1/interview", token=token) as laptop:
            await laptop.send(SessionResume(session_id=started.session_id, last_seq=0))
            assert isinstance(await laptop.recv(), Resumed)
            await phone.request(
                CodeUpdate(id="code", language="python", source=SLOW_TWO_SUM), timeout=20
            )
            await phone.request(SessionEnd(id="end"), timeout=20)
            proc_a.send_signal(signal.SIGKILL)  # running the hidden tests, nothing stored yet
            proc_a.wait(timeout=10)
            await phone.close()
            await pump(laptop, laptop_stream, ReportReady, timeout=60)
        ready = laptop_stream.events[-1]
        assert isinstance(ready, ReportReady)
        assert [e.reason for e in laptop_stream.events if isinstance(e, SessionEnded)] == [
            "candidate_ended"
        ]
        assert_gap_free(laptop_stream.events)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as http:
            report = await http.get(
                f"/v1/sessions/{started.session_id}/report",
                headers={"Authorization": f"Bearer {token}"},
            )
            metrics_text = (await http.get("/metrics")).text
    assert report.status_code == 200, report.text
    assert report.json()["overall"] == ready.overall
    conn = await asyncpg.connect(services.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT r.report_id, s.report_pending FROM reports r JOIN sessions s ON s.id = r.session_id"
            " WHERE r.session_id = $1",
            started.session_id,
        )
    finally:
        await conn.close()
    assert row is not None and row["report_id"] == ready.report_id and not row["report_pending"]
    assert report.json()["hidden_tests"]["total"] > 0
    assert metric(metrics_text, "mentara_reports_recovered_total") == 1


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus text (0 when absent), summed over unnamed labels."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head != name and not head.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
