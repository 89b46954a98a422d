"""A load run's settings: one frozen, picklable :class:`LoadConfig`, and the parsers behind
its command-line form (track mix, server URLs).

Contract: :meth:`LoadConfig.validate` raises :class:`ConfigError` naming the option for every
value the run cannot use; a validated config is safe to hand to any number of processes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from protocol.messages import Track

__all__ = [
    "DEFAULT_MIX",
    "INTERVIEW_PATH",
    "ConfigError",
    "LoadConfig",
    "SubprotocolChoice",
    "http_base",
    "interview_url",
    "parse_mix",
]

INTERVIEW_PATH = "/v1/interview"
TRACKS: tuple[Track, ...] = get_args(Track)
DEFAULT_MIX: tuple[tuple[Track, float], ...] = (
    ("coding", 0.7),
    ("system_design", 0.2),
    ("behavioral", 0.1),
)
SubprotocolChoice = Literal["json", "msgpack", "mixed"]


class ConfigError(ValueError):
    """An option has a value the run cannot use; the message names the option."""


def parse_mix(text: str) -> tuple[tuple[Track, float], ...]:
    """``coding=0.7,system_design=0.2,behavioral=0.1`` → weights normalized to sum 1.

    Raises ConfigError for an unknown track, a repeated one, a negative or non-numeric weight,
    or weights that sum to 0.
    """
    weights: dict[Track, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--mix: expected track=weight, got {part.strip()!r}")
        track = next((t for t in TRACKS if t == name), None)
        if track is None:
            raise ConfigError(f"--mix: unknown track {name!r} (tracks: {', '.join(TRACKS)})")
        if track in weights:
            raise ConfigError(f"--mix: track {name!r} given twice")
        try:
            weight = float(raw)
        except ValueError:
            raise ConfigError(f"--mix: weight of {name!r} is not a number: {raw!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"--mix: weight of {name!r} must be a number >= 0")
        weights[track] = weight
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError("--mix: weights must add up to more than 0")
    return tuple((t, w / total) for t, w in weights.items() if w > 0)


def interview_url(url: str) -> str:
    """A ``ws://`` or ``wss://`` URL with the interview path when it has none.

    ``ws://127.0.0.1:8000`` → ``ws://127.0.0.1:8000/v1/interview``. Raises ConfigError for
    another scheme or a URL without a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"--url: expected ws://host:port or wss://host:port, got {url!r}")
    path = parts.path if parts.path not in ("", "/") else INTERVIEW_PATH
    return urlunsplit(parts._replace(path=path))


def http_base(url: str) -> str:
    """The HTTP origin of a ws URL: ``ws://h:p/...`` → ``http://h:p``, ``wss`` → ``https``."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "", "", ""))


@dataclass(frozen=True)
class LoadConfig:
    """Everything a run needs; times in seconds, rates per minute per candidate.

    ``urls`` are interview URLs (see :func:`interview_url`). Candidate ``i`` starts on
    ``urls[i % len(urls)]`` and moves to the next URL at each reconnect. ``token_secret`` is
    the HS256 secret tokens are minted with; it is never written to the results.
    """

    urls: tuple[str, ...]
    token_secret: str = field(repr=False)
    sessions: int = 10
    duration_s: float = 60.0
    ramp_up_s: float = 10.0
    processes: int = 1
    think_time_s: float = 5.0
    code_every_s: float = 8.0
    run_every_s: float = 45.0
    resume_rate: float = 0.0
    mix: tuple[tuple[Track, float], ...] = DEFAULT_MIX
    subprotocol: SubprotocolChoice = "json"
    out_dir: Path = Path("bench-results")
    grace_s: float = 30.0
    progress_every_s: float = 2.0
    seed: int = 1
    run_id: str = "run"
    """A short tag in every user id (``load-<run_id>-<n>``), so runs never share a user."""
    record_dir: Path | None = None
    """Where each candidate's events and acks are written for a later checker
    (:mod:`loadtest.record`); None: not written."""

    def validate(self) -> LoadConfig:
        """Return self, or raise ConfigError naming the first bad option."""
        if not self.urls:
            raise ConfigError("--url: give at least one server URL")
        for url in self.urls:
            interview_url(url)
        if len(self.token_secret.encode()) < 32:
            raise ConfigError("--token-secret: the HS256 secret must be at least 32 bytes")
        checks: tuple[tuple[str, float, float], ...] = (
            ("--sessions", self.sessions, 1),
            ("--duration", self.duration_s, 1),
            ("--ramp-up", self.ramp_up_s, 0),
            ("--processes", self.processes, 1),
            ("--think-time", self.think_time_s, 0),
            ("--code-every", self.code_every_s, 0),
            ("--run-every", self.run_every_s, 0),
            ("--resume-rate", self.resume_rate, 0),
            ("--grace", self.grace_s, 5),
            ("--progress-every", self.progress_every_s, 0.1),
        )
        for option, value, low in checks:
            if not math.isfinite(value) or value < low:
                raise ConfigError(f"{option} must be at least {low:g}, got {value}")
        if self.subprotocol not in get_args(SubprotocolChoice):
            raise ConfigError(
                f"--subprotocol must be json, msgpack or mixed, got {self.subprotocol!r}"
            )
        if not self.mix:
            raise ConfigError("--mix: no track has a weight")
        return self

    @property
    def deadline_s(self) -> float:
        """When the run stops whatever happens, from its start: duration plus grace."""
        return self.duration_s + self.grace_s

    def public(self) -> dict[str, Any]:
        """The settings as JSON-safe values, without the secret (for the results file)."""
        data = asdict(self)
        data.pop("token_secret")
        data["out_dir"] = str(self.out_dir)
        data["record_dir"] = None if self.record_dir is None else str(self.record_dir)
        data["urls"] = list(self.urls)
        data["mix"] = {track: round(weight, 6) for track, weight in self.mix}
        return data
