"""What one Claude request costs a worker's CPU, sending and reading, through the SDK.

``python -m bench.sdk_request --requests 400 --rounds 3`` starts the benchmark's fake Messages
API (:mod:`bench.fake_claude`, its own process, answering at once) and, in this process, sends
interviewer-sized requests the way a worker does: the worker's client
(``server.claude_client``: the SDK over aiohttp), ``ClaudeStream.open`` and the lean reader to
the body's end. It prints, per request, this process's CPU (``time.process_time``) for the
send alone (``messages.create`` until the response headers) and for the whole request
(send and read), the median of ``--rounds`` rounds. The Claude path makes two such requests
per candidate message (the judge's and the next turn's), which the offline path does not
make: docs/benchmarks.md divides this cost by the events a turn streams.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import anthropic

from server.claude_sse import ClaudeStream

__all__ = ["main", "request_params"]


def request_params(messages: int) -> dict[str, Any]:
    """An interviewer turn's request after ``messages`` messages of about 60 words each, with
    a system prompt of about 2 KB (the size of the interviewer's)."""
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 60}
        for i in range(max(1, messages | 1))  # odd: the last one is the candidate's
    ]
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 400,
        "messages": history,
        "system": [
            {
                "type": "text",
                "text": "You interview. " * 140,
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "metadata": {"user_id": "0" * 32},
    }


async def _round(
    client: anthropic.AsyncAnthropic, params: dict[str, Any], n: int
) -> tuple[float, float]:
    send = 0.0
    started = time.process_time()
    for _ in range(n):
        before = time.process_time()
        stream = await ClaudeStream.open(client, params)
        send += time.process_time() - before
        while await stream.next_events() is not None:
            pass
        await stream.aclose()
    return send / n, (time.process_time() - started) / n


async def _run(base_url: str, args: argparse.Namespace) -> list[tuple[float, float]]:
    client = anthropic.AsyncAnthropic(
        api_key="bench-key", base_url=base_url, http_client=anthropic.DefaultAioHttpClient()
    )
    try:
        params = request_params(args.messages)
        await _round(client, params, 20)  # warm: connections made, code paths taken
        return [await _round(client, params, args.requests) for _ in range(args.rounds)]
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sdk_request", description=__doc__)
    p.add_argument("--requests", type=int, default=400, help="requests per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--messages", type=int, default=11, help="messages in each request")
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()  # as the server runs
    except ImportError:  # pragma: no cover - uvloop is in the runtime lock
        pass
    fake = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_claude", "--port", "0", "--tokens-per-s", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        found = re.search(r"http://\S+", fake.stdout.readline())
        if found is None:
            raise SystemExit("bench.sdk_request: the fake Messages API did not start")
        rounds = asyncio.run(_run(found.group(0), args))
    finally:
        fake.terminate()
        fake.wait()
    send = statistics.median(r[0] for r in rounds) * 1e3
    whole = statistics.median(r[1] for r in rounds) * 1e3
    print(
        f"{args.requests} requests x {args.rounds} rounds, {args.messages} messages each: "
        f"send {send:.2f} ms CPU, send and read {whole:.2f} ms CPU per request (median round)"
    )


if __name__ == "__main__":
    main()
