"""The chaos checker's rules on observations made up to break each one (chaos/checker.py);
the suite that feeds it real runs is tests/test_chaos.py."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from chaos.checker import Observations, StoredSession, check, format_table
from loadtest.record import Recorder, event_digest, read_records, stored_event_digest, text_digest
from protocol.codec import JSON, MSGPACK
from protocol.messages import CandidateSaid

SESSION = "s-1"
USER = "load-x-0"


def _session(
    events: int = 5, *, status: str = "ended", report: bool = True, **changes: Any
) -> StoredSession:
    fields: dict[str, Any] = {
        "id": SESSION,
        "status": status,
        "end_reason": "candidate_ended" if status == "ended" else None,
        "has_report": report,
        "events": {seq: ("interviewer.delta", f"h{seq}") for seq in range(1, events + 1)},
        "message_texts": Counter({text_digest("hello"): 1}),
        "inputs": {"in-1": 3},
    }
    fields.update(changes)
    return StoredSession(**fields)


def _records(events: int = 5) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [
        {"k": "sent", "u": USER, "ref": "in-1", "kind": "candidate.message",
         "h": text_digest("hello")},
    ]  # fmt: skip
    records += [
        {"k": "ev", "u": USER, "s": SESSION, "q": seq, "t": "interviewer.delta", "h": f"h{seq}"}
        for seq in range(1, events + 1)
    ]
    records.append(
        {"k": "ack", "u": USER, "s": SESSION, "ref": "in-1", "kind": "candidate.message", "q": 3}
    )
    return records


def _appends(tokens: list[str]) -> list[tuple[float, str, int, str, str]]:
    return [(100.0 + seq, SESSION, seq, token, "s1") for seq, token in enumerate(tokens, 1)]


def _leases(*taken: tuple[float, str]) -> list[tuple[float, str, str, str]]:
    return [(ts, SESSION, token, "s1") for ts, token in taken]


def _observe(**changes: Any) -> Observations:
    session = changes.pop("session", None) or _session()
    session = StoredSession(
        **{**session.__dict__, "events": {**session.events, 3: ("candidate.message", "h3")}}
    )
    fields: dict[str, Any] = {
        "records": _records(),
        "harness_issues": {},
        "appends": _appends(["w1:1", "w1:1", "w1:1", "w2:2", "w2:2"]),
        "leases": _leases((100.0, "w1:1"), (103.5, "w2:2")),
        "sessions": {SESSION: session},
    }
    fields.update(changes)
    return Observations(**fields)


def test_a_clean_run_has_no_violation() -> None:
    verdict = check(_observe())
    assert verdict.total_violations == 0, verdict.examples
    assert verdict.client_events == 5 and verdict.stored_events == 5
    assert all(verdict.checks[name] for name in verdict.checks)
    assert "violations          0" in format_table(Counter({"kill_redis": 1}), verdict, 1)


def test_an_old_owner_appending_after_its_successor_is_caught() -> None:
    appends = _appends(["w1:1", "w1:1", "w2:2", "w1:1", "w2:2"])
    verdict = check(_observe(appends=appends))
    assert verdict.violations == Counter({"one_owner_at_a_time": 1}), verdict.examples


def test_a_token_taken_again_after_redis_lost_its_data_is_a_new_owner() -> None:
    # w1:1, then w2:2, then Redis restarts, its fence counter starts over: w1 gets w1:1 again.
    appends = _appends(["w1:1", "w2:2", "w2:2", "w1:1", "w1:1"])
    leases = _leases((100.0, "w1:1"), (101.5, "w2:2"), (103.5, "w1:1"))
    verdict = check(_observe(appends=appends, leases=leases))
    assert verdict.total_violations == 0, verdict.examples


def test_a_seq_appended_twice_is_a_duplicate() -> None:
    appends = [*_appends(["w1:1"] * 5), (106.0, SESSION, 4, "w2:2", "s2")]
    verdict = check(_observe(appends=appends))
    assert verdict.violations["no_duplicate"] == 1, verdict.examples


def test_what_a_client_saw_must_be_what_is_stored() -> None:
    records = _records()
    records[2] = {**records[2], "h": "something else"}  # seq 2 with other contents
    records.append({"k": "ev", "u": USER, "s": SESSION, "q": 6, "t": "phase", "h": "h6"})
    verdict = check(_observe(records=records))
    assert verdict.violations == Counter({"one_content_per_seq": 1, "nothing_acked_lost": 1})


def test_a_hole_in_the_store_is_a_gap() -> None:
    session = _session()
    del session.events[4]
    verdict = check(_observe(session=session))
    assert verdict.violations["no_gap"] == 1
    assert verdict.violations["nothing_acked_lost"] == 1  # the client had received seq 4


def test_the_clients_own_stream_errors_count() -> None:
    issues = {"gap": 2, "duplicate": 1, "malformed_stream": 1, "transcript_mismatch": 1}
    verdict = check(_observe(harness_issues=issues))
    assert verdict.violations == Counter({"no_gap": 2, "no_duplicate": 1, "stream_well_formed": 2})


def test_an_acked_input_must_be_applied_once() -> None:
    twice = _session(message_texts=Counter({text_digest("hello"): 2}))
    assert check(_observe(session=twice)).violations == Counter({"acked_input_applied_once": 1})
    forgotten = _session(inputs={})
    assert check(_observe(session=forgotten)).violations == Counter({"acked_input_applied_once": 1})


def test_an_ended_session_needs_its_report_unless_erased() -> None:
    assert check(_observe(session=_session(report=False))).violations == Counter(
        {"ended_has_report": 1}
    )
    erased = _session(report=False, end_reason="deleted")
    assert check(_observe(session=erased)).total_violations == 0
    live = _session(status="active", report=False)
    assert check(_observe(session=live)).total_violations == 0


def test_an_event_has_one_digest_whatever_carried_it(tmp_path: Path) -> None:
    """The checker compares what clients got (JSON or MessagePack) with ``jsonb`` rows: the
    digest is of the decoded event, so the encodings agree, and any changed field shows."""
    event = CandidateSaid(turn_id="c1", text="naïve \u2028 ✓ 😀", seq=7, ts=1_700_000_000_123)
    digests = {event_digest(codec.decode_server(codec.encode(event))) for codec in (JSON, MSGPACK)}
    stored = json.dumps(json.loads(JSON.encode(event)), ensure_ascii=True, indent=1)  # as jsonb
    digests.add(stored_event_digest(stored))
    assert len(digests) == 1
    assert event_digest(msgspec.structs.replace(event, text="naive")) not in digests

    recorder = Recorder(tmp_path, "run", 0)
    recorder.write(k="ev", u=USER, s=SESSION, q=7, t="candidate.message", h=digests.pop())
    recorder.close()
    with (tmp_path / "records-run-0.jsonl").open("a") as torn:
        torn.write('{"k": "ev", "u"')  # a process killed mid-line
    assert [r["q"] for r in read_records(tmp_path)] == [7]
