"""The benchmark's client processes: listeners (or idle sockets) spread over P processes.

The parent deals the sessions round-robin into :class:`ClientPlan`\\ s, one per process, all
sharing one timeline in Unix seconds: session ``i`` of ``n`` connects at
``t0 + ramp_s * i / n``; lag is recorded for arrivals in ``[window_start, window_end)``;
at ``stop_at`` every socket is closed and the process reports.

Reports go through one ``multiprocessing`` queue as small dicts:

- ``{"type": "ready", "worker", "connected", "errors"}`` (idle plans, once all sockets are
  open or failed);
- ``{"type": "final", "worker", "stats": ListenerStats.to_dict()}`` (streaming plans) or
  ``{"type": "final", "worker", "connected", "open_at_release", "errors"}`` (idle plans);
- ``{"type": "crash", "worker", "error"}`` when a process's loop died.

Contract: a plan's coroutine returns by ``stop_at`` plus a few seconds of closing; an idle
plan also returns as soon as the pool's ``release`` event is set (after ``ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.synchronize import Event as EventType
from typing import Any, Literal

from bench.listener import (
    BareListener,
    IdleSocket,
    Listener,
    ListenerStats,
    MentaraListener,
    SocketIOListener,
    Window,
)
from bench.peers.serve import raise_fd_limit
from bench.wsclient import connect

__all__ = ["ClientKind", "ClientPlan", "ClientPool", "plan_clients", "socket_url"]

ClientKind = Literal["mentara", "bare", "socketio", "idle"]
Emit = Callable[[dict[str, Any]], None]
CLOSE_WAIT_S = 3.0


def socket_url(kind: ClientKind, base: str) -> str:
    """The socket URL of a system from its ``ws://host:port`` base."""
    match kind:
        case "mentara" | "idle":
            return base + "/v1/interview"
        case "socketio":
            return base + "/socket.io/?EIO=4&transport=websocket"
        case "bare":
            return base + "/"


@dataclass(frozen=True)
class ClientPlan:
    kind: ClientKind
    url: str
    """The server's ``ws://host:port`` base (see :func:`socket_url`)."""
    worker: int
    indices: tuple[int, ...]
    total: int
    t0: float
    ramp_s: float
    window_start: float
    window_end: float
    stop_at: float
    think_s: float = 0.2
    token_secret: str = ""
    tag: str = "bench"
    question_id: str = "two-sum"
    connect_timeout_s: float = 20.0
    connect_concurrency: int = 100


def plan_clients(
    kind: ClientKind, url: str, sessions: int, processes: int, **timeline: Any
) -> list[ClientPlan]:
    """Deal ``sessions`` round-robin over ``min(processes, sessions)`` plans."""
    count = max(1, min(processes, sessions))
    base = ClientPlan(kind, url, 0, (), sessions, **timeline)
    return [replace(base, worker=w, indices=tuple(range(w, sessions, count))) for w in range(count)]


def _token(plan: ClientPlan, index: int) -> str:
    from server.dev_tokens import mint_dev_token

    ttl = int(max(60.0, plan.stop_at - time.time() + 3600))
    return mint_dev_token(plan.token_secret, f"bench-{plan.tag}-{index}", ttl_s=ttl)


def _listener(plan: ClientPlan, index: int, stats: ListenerStats, window: Window) -> Listener:
    url = socket_url(plan.kind, plan.url)
    session = f"s-{plan.tag}-{index}"
    match plan.kind:
        case "mentara":
            return MentaraListener(
                url,
                stats,
                window,
                think_s=plan.think_s,
                session=session,
                token=_token(plan, index),
                question_id=plan.question_id,
            )
        case "socketio":
            return SocketIOListener(url, stats, window, think_s=plan.think_s, session=session)
        case "bare":
            return BareListener(url, stats, window, think_s=plan.think_s, session=session)
    raise ValueError(f"no listener for {plan.kind!r}")


async def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _close_all(sockets: list[Any]) -> None:
    for sock in sockets:
        sock.close()
    waits = [asyncio.ensure_future(s.closed.wait()) for s in sockets]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=CLOSE_WAIT_S)
        for waiter in pending:
            waiter.cancel()
    for sock in sockets:
        sock.abort()


async def run_streaming(plan: ClientPlan) -> ListenerStats:
    """Play a streaming plan to ``stop_at``; see the module docstring."""
    stats = ListenerStats()
    window = Window(plan.window_start, plan.window_end)
    listeners: list[Listener] = []

    async def start(index: int) -> None:
        await _sleep_until(plan.t0 + plan.ramp_s * index / max(1, plan.total))
        listener = _listener(plan, index, stats, window)
        listeners.append(listener)
        try:
            await connect(listener, plan.connect_timeout_s)
        except Exception as exc:
            stats.errors[f"connect.{type(exc).__name__}"] += 1

    starters = [asyncio.create_task(start(i)) for i in plan.indices]
    try:
        await _sleep_until(plan.window_start)
        stats.active_at_window = sum(1 for x in listeners if x.started and x.is_open)
        await _sleep_until(plan.stop_at)
    finally:
        late = [t for t in starters if not t.done()]
        for task in late:
            task.cancel()
        stats.errors["connect.late"] += len(late)
        if not stats.errors["connect.late"]:
            del stats.errors["connect.late"]
        await asyncio.gather(*starters, return_exceptions=True)
        stats.open_at_end = sum(1 for x in listeners if x.is_open)
        await _close_all(listeners)
    return stats


async def run_idle(plan: ClientPlan, emit: Emit, released: Callable[[], bool]) -> None:
    """Open every socket of the plan (authenticated), report ``ready``, hold them until
    released (or ``stop_at``), report ``final``."""
    url = socket_url("idle", plan.url)
    gate = asyncio.Semaphore(plan.connect_concurrency)
    sockets: list[IdleSocket] = []
    errors: Counter[str] = Counter()

    async def open_one(index: int) -> None:
        async with gate:
            sock = IdleSocket(url, _token(plan, index))
            try:
                await connect(sock, plan.connect_timeout_s)
                async with asyncio.timeout(plan.connect_timeout_s):
                    await sock.welcomed
            except Exception as exc:
                errors[f"connect.{type(exc).__name__}"] += 1
                sock.abort()
                return
            sockets.append(sock)

    await _sleep_until(plan.t0)
    await asyncio.gather(*(open_one(i) for i in plan.indices))
    emit(
        {"type": "ready", "worker": plan.worker, "connected": len(sockets), "errors": dict(errors)}
    )
    # ``released`` reads a multiprocessing.Event, which has no awaitable form: poll it.
    while not released() and time.time() < plan.stop_at:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    open_now = sum(1 for s in sockets if s.is_open)
    for sock in sockets:
        if not sock.is_open:
            errors[f"close.{sock.close_code}"] += 1
        for code in sock.unexpected:
            errors[code] += 1
    await _close_all(list(sockets))
    emit(
        {
            "type": "final",
            "worker": plan.worker,
            "connected": len(sockets),
            "open_at_release": open_now,
            "errors": dict(errors),
        }
    )


async def run_plan(plan: ClientPlan, emit: Emit, released: Callable[[], bool]) -> None:
    if plan.kind == "idle":
        await run_idle(plan, emit, released)
        return
    stats = await run_streaming(plan)
    emit({"type": "final", "worker": plan.worker, "stats": stats.to_dict()})


def client_process(plan: ClientPlan, reports: Any, release: EventType) -> None:
    """Entry point of a spawned client process (uvloop, raised open-file limit)."""
    try:
        raise_fd_limit()
        import uvloop

        uvloop.run(run_plan(plan, reports.put, release.is_set))
    except BaseException:
        reports.put({"type": "crash", "worker": plan.worker, "error": traceback.format_exc()})
        raise


class ClientPool:
    """The spawned client processes of one workload, and the queue they report on."""

    def __init__(self, plans: list[ClientPlan]) -> None:
        context = multiprocessing.get_context("spawn")
        self.plans = plans
        self.reports: Any = context.Queue()
        self.release = context.Event()
        self.processes = [
            context.Process(
                target=client_process,
                args=(plan, self.reports, self.release),
                name=f"bench-client-{plan.worker}",
                daemon=True,
            )
            for plan in plans
        ]

    def __enter__(self) -> ClientPool:
        for process in self.processes:
            process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        for process in self.processes:
            process.join(timeout=10)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.reports.close()
            self.reports.join_thread()

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None and p.exitcode is None]

    def collect(self, kind: str, timeout: float) -> list[dict[str, Any]]:
        """One report of ``kind`` per process, in worker order. Raises RuntimeError on a
        crash report, a process that died without reporting, or the timeout."""
        got: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.processes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"client processes: {len(got)} of {len(self.processes)} {kind} reports in time"
                )
            try:
                report = self.reports.get(timeout=min(0.5, left))
            except queue_module.Empty:
                dead = [p.name for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"client processes died: {', '.join(dead)}") from None
                continue
            if report["type"] == "crash":
                raise RuntimeError(f"client process {report['worker']} crashed:\n{report['error']}")
            if report["type"] == kind:
                got[int(report["worker"])] = report
        return [got[w] for w in sorted(got)]
