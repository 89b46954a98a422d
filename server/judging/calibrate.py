"""``python -m server.judging.calibrate --judge claude``: the calibration figures of a judge.

Replays each track's calibration set (and, with ``--heldout``, its held-out set) through
the chosen conversation judge, as the live server calls it
(:mod:`scoring.calibration.judged`), and prints the agreement tables of
:mod:`scoring.calibration.agreement` as Markdown, with a tally of the judge's calls.

``--judge offline`` gives the figures published in ``docs/scoring.md``. ``--judge claude``
calls the Messages API with :class:`~server.judging.claude_judge.ClaudeJudge`: the key and
endpoint come from ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` (as the server reads
them), the model from ``--model`` (default: the server's judge model). One call per
candidate message: about 60 calls per track for the calibration sets, 15 more with
``--heldout``. Exit status 0, or 2 when some calls failed or were discarded (the figures
are then printed but do not measure the judge alone).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from scoring.calibration import TRACK_DIRS, heldout_dir, load_calibration_sessions
from scoring.calibration.judged import ConversationJudge, OfflineJudge, score_judged
from scoring.rubric import TRACKS, Track
from server.judging.claude_judge import DEFAULT_JUDGE_MODEL, ClaudeJudge

__all__ = ["main", "run"]


async def run(
    judge: ConversationJudge,
    *,
    name: str,
    tracks: Sequence[Track] = TRACKS,
    heldout: bool = False,
    concurrency: int = 1,
    out: TextIO = sys.stdout,
) -> bool:
    """Print the figures of ``judge`` on ``tracks``; True when every call was applied or
    skipped (none failed or discarded)."""
    clean = True
    for track in tracks:
        folders = [("calibration set", TRACK_DIRS[track])]
        if heldout:
            folders.append(("held-out set", heldout_dir(track)))
        for label, folder in folders:
            figures = await score_judged(
                load_calibration_sessions(folder), judge, name=name, concurrency=concurrency
            )
            print(f"{track}, {label}:\n\n{figures.markdown()}\n", file=out)
            clean = clean and not (figures.calls.get("failed") or figures.calls.get("discarded"))
    return clean


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.judging.calibrate",
        description="Replay the calibration sets through a judge and print its agreement.",
    )
    parser.add_argument("--judge", choices=("offline", "claude"), default="offline")
    parser.add_argument("--track", choices=TRACKS, action="append", dest="tracks")
    parser.add_argument("--heldout", action="store_true", help="also the held-out sets")
    parser.add_argument("--model", default=DEFAULT_JUDGE_MODEL, help="the Claude judge model")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="sessions replayed at once (claude)"
    )
    args = parser.parse_args(argv)
    tracks: tuple[Track, ...] = tuple(args.tracks or TRACKS)

    async def go() -> bool:
        if args.judge == "offline":
            return await run(
                OfflineJudge(), name="offline", tracks=tracks, heldout=args.heldout, out=out
            )
        # Generous per-call bounds: a calibration run is not a live interview.
        judge = ClaudeJudge(model=args.model, timeout_s=60.0, max_retries=4)
        try:
            return await run(
                judge,
                name=f"claude ({args.model})",
                tracks=tracks,
                heldout=args.heldout,
                concurrency=max(1, args.concurrency),
                out=out,
            )
        finally:
            await judge.aclose()

    return 0 if asyncio.run(go()) else 2


if __name__ == "__main__":
    raise SystemExit(main())
