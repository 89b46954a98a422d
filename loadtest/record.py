"""What each candidate saw and had acked, written down for a checker that runs afterwards
(``mentara load --record DIR``; ``mentara chaos`` reads it, ``chaos.checker``).

One JSON object per line, in ``DIR/records-<run_id>-<worker>.jsonl``, in the order the
candidate saw things:

- ``{"k": "ev", "u": user, "s": session, "q": seq, "t": type, "h": digest}``: an event
  received (live or replayed), ``digest`` being :func:`event_digest` of it;
- ``{"k": "sent", "u": user, "ref": id, "kind": kind, "h": digest|null}``: an input sent for
  the first time (a re-send after a reconnect is not written again); ``h`` is the
  :func:`text_digest` of a ``candidate.message``'s text;
- ``{"k": "ack", "u": user, "s": session, "ref": id, "kind": kind, "q": seq|null}``: an
  input acked (the server says it is durable), with the seq it produced;
- ``{"k": "done", "u": user, "s": session, "phase": phase}``: the candidate's end state.

Lines are buffered and flushed when the worker ends (:meth:`Recorder.close`); a candidate
process killed midway leaves a partial last line, which the reader skips.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from protocol.messages import SessionEvent

__all__ = ["Recorder", "event_digest", "read_records", "text_digest"]


def event_digest(event: msgspec.Struct) -> str:
    """The event's contents as a short digest that does not depend on the encoding it came
    in (JSON or MessagePack, the wire or Postgres' ``jsonb``): its fields as builtins, keys
    sorted."""
    canonical = json.dumps(msgspec.to_builtins(event), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


_EVENT_DECODER = msgspec.json.Decoder(SessionEvent)


def stored_event_digest(body: str | bytes) -> str:
    """:func:`event_digest` of an event stored as its wire JSON (``session_events.body``)."""
    return event_digest(_EVENT_DECODER.decode(body))


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Recorder:
    """Writes one worker's records (see the module docstring); a no-op without a folder."""

    def __init__(self, folder: Path | None, run_id: str, worker_id: int) -> None:
        self._file: IO[str] | None = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"records-{run_id}-{worker_id}.jsonl"
            self._file = path.open("a", encoding="utf-8", buffering=1 << 16)

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, **record: Any) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_records(folder: Path) -> Iterator[dict[str, Any]]:
    """Every record in ``folder``, file by file; a torn last line is skipped."""
    for path in sorted(folder.glob("records-*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield record
