"""The checker: what every client saw and the store holds afterwards, against the promises.

It reads a finished run (:class:`Observations`: the candidates' records, ``loadtest.record``;
each load process's own stream checks, ``results.json``; the servers' lease and append-audit
log lines; the rows in Postgres) and checks, each for every session or every item it names:

| invariant | what is checked |
|---|---|
| ``no_gap`` | the store holds seqs 1..n of every session; no client's stream skipped a seq (the load harness's ``gap`` and ``resume_seam`` checks, which know snapshots) |
| ``no_duplicate`` | no client received a seq twice out of a resume (the harness's ``duplicate``) and no seq was appended twice (two audit lines for one seq) |
| ``one_content_per_seq`` | what each client received as seq N is what the store holds as seq N |
| ``nothing_acked_lost`` | every event a client received is in the store; every acked input's seq is in the store |
| ``acked_input_applied_once`` | every acked input is recorded as applied; each acked message's event carries its text, and no message text is stored more often than it was sent |
| ``ended_has_report`` | every ended session (not erased) has its report |
| ``one_owner_at_a_time`` | in seq order, each ownership (a lease taken: token and time) appended one unbroken run of a session's seqs: one that appends again after another appended means two workers appended as owners at once |
| ``stream_well_formed`` | what each client received makes sense as a stream and matches the stored transcript (the harness's ``malformed_stream``, ``foreign_event`` and ``transcript_mismatch``: a delta for a turn already ended, say) |

Pure functions over the observations: the I/O is in :func:`observe`.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from loadtest.record import read_records, stored_event_digest, text_digest

__all__ = [
    "INVARIANTS",
    "Observations",
    "Verdict",
    "check",
    "observe",
]

INVARIANTS = (
    "no_gap",
    "no_duplicate",
    "one_content_per_seq",
    "nothing_acked_lost",
    "acked_input_applied_once",
    "ended_has_report",
    "one_owner_at_a_time",
    "stream_well_formed",
)
_APPEND = re.compile(r"^append (\S+) seq (\d+) token (\S+)$")
_LEASE = re.compile(r"^lease taken: session (\S+) token (\S+) at seq (\d+)$")
_MAX_EXAMPLES = 20
_EXAMPLES_PER_INVARIANT = 4


@dataclass(frozen=True)
class StoredSession:
    id: str
    status: str
    end_reason: str | None
    has_report: bool
    events: dict[int, tuple[str, str]]
    """seq -> (type, digest)"""
    message_texts: Counter[str]
    """candidate.message events by text digest"""
    inputs: dict[str, int | None]
    """input id -> seq"""


@dataclass
class Observations:
    records: list[dict[str, Any]]
    harness_issues: dict[str, int]
    """The load processes' own stream checks: count per kind (``gap``, ``duplicate``...)."""
    appends: list[tuple[float, str, int, str, str]]
    """(time, session, seq, token, host) per audit line."""
    leases: list[tuple[float, str, str, str]]
    """(time, session, token, host) per lease taken."""
    sessions: dict[str, StoredSession]


@dataclass
class Verdict:
    checks: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    client_events: int = 0
    stored_events: int = 0

    def ok(self, invariant: str, n: int = 1) -> None:
        self.checks[invariant] += n

    def bad(self, invariant: str, detail: str) -> None:
        self.checks[invariant] += 1
        self.violations[invariant] += 1
        shown = sum(e.startswith(f"{invariant}: ") for e in self.examples)
        if len(self.examples) < _MAX_EXAMPLES and shown < _EXAMPLES_PER_INVARIANT:
            self.examples.append(f"{invariant}: {detail}")

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())


# -- reading a run ---------------------------------------------------------------------------


async def observe(
    database_url: str, records_dir: Path, load_results: Iterable[Path], server_logs: dict[str, Path]
) -> Observations:
    """Everything :func:`check` needs, read from a finished run."""
    harness: Counter[str] = Counter()
    for path in load_results:
        if path.exists():
            data = json.loads(path.read_text())
            harness.update({k: int(v) for k, v in data.get("integrity_by_kind", {}).items()})
    appends: list[tuple[float, str, int, str, str]] = []
    leases: list[tuple[float, str, str, str]] = []
    for host, log in server_logs.items():
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            msg = str(entry.get("msg", ""))
            ts = float(entry.get("ts", 0))
            if m := _APPEND.match(msg):
                appends.append((ts, m.group(1), int(m.group(2)), m.group(3), host))
            elif m := _LEASE.match(msg):
                leases.append((ts, m.group(1), m.group(2), host))
    conn = await asyncpg.connect(database_url)
    try:
        sessions = await _stored_sessions(conn)
    finally:
        await conn.close()
    return Observations(list(read_records(records_dir)), dict(harness), appends, leases, sessions)


async def _stored_sessions(conn: asyncpg.Connection) -> dict[str, StoredSession]:
    rows = await conn.fetch(
        """SELECT s.id, s.status, s.end_reason, r.session_id IS NOT NULL AS has_report
             FROM sessions s LEFT JOIN reports r ON r.session_id = s.id"""
    )
    events: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
    texts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in await conn.fetch(
        "SELECT session_id, seq, type, body::text AS body FROM session_events"
    ):
        events[r["session_id"]][r["seq"]] = (r["type"], stored_event_digest(r["body"]))
        if r["type"] == "candidate.message":
            texts[r["session_id"]][text_digest(json.loads(r["body"])["text"])] += 1
    inputs: dict[str, dict[str, int | None]] = defaultdict(dict)
    for r in await conn.fetch("SELECT session_id, input_id, seq FROM client_inputs"):
        inputs[r["session_id"]][r["input_id"]] = r["seq"]
    return {
        r["id"]: StoredSession(
            r["id"],
            r["status"],
            r["end_reason"],
            r["has_report"],
            events[r["id"]],
            texts[r["id"]],
            inputs[r["id"]],
        )
        for r in rows
    }


# -- checking --------------------------------------------------------------------------------


def check(obs: Observations) -> Verdict:
    v = Verdict()
    v.stored_events = sum(len(s.events) for s in obs.sessions.values())
    _check_store_gaps(obs, v)
    _check_client_streams(obs, v)
    _check_acks(obs, v)
    _check_reports(obs, v)
    _check_appends(obs, v)
    return v


def _check_store_gaps(obs: Observations, v: Verdict) -> None:
    for s in obs.sessions.values():
        seqs = sorted(s.events)
        if seqs and seqs != list(range(1, seqs[-1] + 1)):
            missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
            v.bad("no_gap", f"session {s.id}: the store lacks seqs {missing[:10]}")
        else:
            v.ok("no_gap")


def _check_client_streams(obs: Observations, v: Verdict) -> None:
    for kind, invariant in (("gap", "no_gap"), ("resume_seam", "no_gap"),
                            ("duplicate", "no_duplicate"),
                            ("malformed_stream", "stream_well_formed"),
                            ("foreign_event", "stream_well_formed"),
                            ("transcript_mismatch", "stream_well_formed")):  # fmt: skip
        count = obs.harness_issues.get(kind, 0)
        if count:
            for _ in range(count):
                v.bad(invariant, f"a client's stream checker reported {kind}")
    for r in obs.records:
        if r.get("k") != "ev":
            continue
        v.client_events += 1
        session = obs.sessions.get(str(r.get("s")))
        stored = session.events.get(int(r["q"])) if session is not None else None
        if stored is None:
            v.bad("nothing_acked_lost", f"session {r.get('s')} seq {r['q']} ({r['t']}) was "
                  "received by a client but is not in the store")  # fmt: skip
            continue
        v.ok("nothing_acked_lost")
        if stored[1] != r["h"]:
            v.bad("one_content_per_seq", f"session {r['s']} seq {r['q']}: a client received "
                  f"{r['t']} {r['h']}, the store holds {stored[0]} {stored[1]}")  # fmt: skip
        else:
            v.ok("one_content_per_seq")
    streams = len({r.get("u") for r in obs.records})  # each checked by its load process
    v.ok("no_gap", streams)
    v.ok("no_duplicate", streams)
    v.ok("stream_well_formed", streams)


def _check_acks(obs: Observations, v: Verdict) -> None:
    sent: dict[str, dict[str, Any]] = {}
    sent_texts: dict[str, Counter[str]] = defaultdict(Counter)  # user -> digests sent
    user_session: dict[str, str] = {}
    for r in obs.records:
        if r.get("k") == "sent":
            sent[r["ref"]] = r
            if r.get("h"):
                sent_texts[r["u"]][r["h"]] += 1
        elif r.get("k") in ("ev", "ack", "done") and r.get("s"):
            user_session[r["u"]] = r["s"]
    for r in obs.records:
        if r.get("k") != "ack" or r.get("kind") in ("session.start", "session.resume"):
            continue
        session = obs.sessions.get(str(r.get("s")))
        if session is None:
            v.bad("acked_input_applied_once", f"ack {r['ref']} names an unknown session")
            continue
        if r.get("kind") == "session.end":
            applied = session.status == "ended"
        else:
            applied = r["ref"] in session.inputs or r.get("kind") == "code.run"
        if not applied:
            v.bad("acked_input_applied_once", f"session {session.id}: acked {r['kind']} "
                  f"{r['ref']} is not recorded as applied")  # fmt: skip
        else:
            v.ok("acked_input_applied_once")
        seq = r.get("q")
        if isinstance(seq, int) and seq > 0:
            event = session.events.get(seq)
            if event is None:
                v.bad("nothing_acked_lost", f"session {session.id}: acked {r['kind']} "
                      f"{r['ref']} produced seq {seq}, not in the store")  # fmt: skip
                continue
            v.ok("nothing_acked_lost")
            if r.get("kind") == "candidate.message":
                if event[0] != "candidate.message":
                    v.bad("acked_input_applied_once", f"session {session.id}: acked message "
                          f"{r['ref']} names seq {seq}, a {event[0]}")  # fmt: skip
                else:
                    v.ok("acked_input_applied_once")
    for user, session_id in user_session.items():
        session = obs.sessions.get(session_id)
        if session is None:
            continue
        extra = session.message_texts - sent_texts.get(user, Counter())
        if extra:
            v.bad("acked_input_applied_once", f"session {session_id}: {sum(extra.values())} "
                  "candidate message(s) stored more often than sent")  # fmt: skip
        else:
            v.ok("acked_input_applied_once")


def _check_reports(obs: Observations, v: Verdict) -> None:
    for s in obs.sessions.values():
        if s.status != "ended" or s.end_reason == "deleted":
            continue
        if s.has_report:
            v.ok("ended_has_report")
        else:
            v.bad("ended_has_report", f"session {s.id} ended ({s.end_reason}) without a report")


def _check_appends(obs: Observations, v: Verdict) -> None:
    """A token alone does not name an ownership: after Redis lost its data the fence counter
    starts again, and a worker may get a token it held before. An ownership is a lease
    taken: (token, when); each append belongs to the latest taking of its token before it."""
    takings: dict[tuple[str, str], list[float]] = defaultdict(list)
    for ts, session_id, token, _host in obs.leases:
        takings[(session_id, token)].append(ts)
    for times in takings.values():
        times.sort()
    by_session: dict[str, dict[int, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for ts, session_id, seq, token, host in obs.appends:
        times = takings.get((session_id, token), [])
        taken = max((t for t in times if t <= ts + 0.001), default=0.0)
        by_session[session_id][seq].append((f"{token}@{taken:.3f}", host))
    for session_id, seqs in by_session.items():
        for seq, appended in seqs.items():
            if len(appended) > 1:
                v.bad("no_duplicate", f"session {session_id} seq {seq} appended "
                      f"{len(appended)} times: {appended}")  # fmt: skip
            else:
                v.ok("no_duplicate")
        finished: set[str] = set()
        current: str | None = None
        for seq in sorted(seqs):
            owner, host = seqs[seq][0]
            if owner == current:
                continue
            if owner in finished:
                v.bad("one_owner_at_a_time", f"session {session_id}: owner {owner} ({host}) "
                      f"appended seq {seq} after another owner had appended")  # fmt: skip
            else:
                v.ok("one_owner_at_a_time")
            if current is not None:
                finished.add(current)
            current = owner


def format_table(faults: Counter[str], v: Verdict, sessions: int) -> str:
    """The run's table: faults injected, sessions, events, invariants checked, violations."""
    lines = [
        "mentara chaos: result",
        f"  faults injected     {sum(faults.values())}"
        + (f" ({', '.join(f'{k} x{n}' for k, n in sorted(faults.items()))})" if faults else ""),
        f"  sessions            {sessions}",
        f"  events              {v.stored_events} stored, {v.client_events} received by clients",
        f"  invariants checked  {len(INVARIANTS)} invariants, {sum(v.checks.values())} checks",
        f"  violations          {v.total_violations}",
        "",
        f"  {'invariant':<28}{'checks':>10}{'violations':>12}",
    ]
    for name in INVARIANTS:
        lines.append(f"  {name:<28}{v.checks[name]:>10}{v.violations[name]:>12}")
    if v.examples:
        lines.append("")
        lines.append("  first violations:")
        lines.extend(f"    {e}" for e in v.examples)
    return "\n".join(lines)
