"""What a virtual candidate says and types: canned lines per track, a growing code buffer,
and the deterministic choices (track, pacing) drawn from the run's seed.

Pure: no I/O. Every choice comes from a ``random.Random`` seeded by the run seed and the
candidate's number, so a run is repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocol.messages import Track

__all__ = [
    "STUCK_LINES",
    "CandidateScript",
    "CodeBuffer",
    "pick_track",
]

STUCK_LINES: tuple[str, ...] = (
    "I'm stuck. Could you give me a hint?",
    "Hmm, I'm not sure how to make this faster. Any hint?",
    "I think I'm lost on the edge cases, can you help me a bit?",
)
"""Lines the interviewer's engine hears as a request for a hint."""

_LINES: dict[Track, tuple[str, ...]] = {
    "coding": (
        "Can I assume the input fits in memory?",
        "Let me restate the problem to make sure I understand it.",
        "A brute-force approach would be quadratic; I think a hash map gets us to linear time.",
        "What should happen when the input is empty?",
        "I'll start with the simple version and then optimize.",
        "I'm going to iterate once and keep what I've seen in a dictionary.",
        "The time complexity is O(n) and the extra space is O(n).",
        "Let me walk through the first example by hand.",
        "I think there's an off-by-one error in my loop, let me check.",
        "Should I handle duplicates in the input?",
        "I could sort first, but that would cost O(n log n).",
        "Okay, I think the code is done. Let me test it against the examples.",
    ),
    "system_design": (
        "Let me start with the functional requirements.",
        "How many daily active users should we plan for?",
        "I'd put a load balancer in front of stateless application servers.",
        "For storage I'd start with Postgres and add read replicas later.",
        "We can cache hot keys in Redis with a short TTL.",
        "Writes can go through a queue so spikes don't overload the database.",
        "I'd shard by user id once a single primary can't keep up.",
        "For availability, two regions with asynchronous replication.",
        "Let me estimate the storage: about a kilobyte per record.",
        "What latency target do we have for reads?",
    ),
    "behavioral": (
        "In my last role I led the migration of our billing service.",
        "The situation was that two teams disagreed on the API design.",
        "I set up a short meeting to hear both sides before deciding.",
        "The result was that we shipped two weeks early.",
        "Looking back, I would have written the design doc sooner.",
        "I learned to ask for feedback earlier in a project.",
        "One project that failed taught me to check assumptions with users.",
        "I try to give feedback privately and specifically.",
    ),
}

_CODE_LINES: tuple[str, ...] = (
    "def solve(nums, target):",
    '    """Return the answer for the given input."""',
    "    seen = {}",
    "    for i, value in enumerate(nums):",
    "        need = target - value",
    "        if need in seen:",
    "            return [seen[need], i]",
    "        seen[value] = i",
    "    return []",
    "",
    "",
    "def helper(items):",
    "    result = []",
    "    for item in items:",
    "        if item is None:",
    "            continue",
    "        result.append(item)",
    "    return result",
    "",
)

_NOTES_LINES: tuple[str, ...] = (
    "## Requirements",
    "- users create and read items",
    "- p99 read latency under 100 ms",
    "## Components",
    "- load balancer -> stateless app servers",
    "- Postgres primary + replicas",
    "- Redis cache for hot keys",
    "## Scale",
    "- shard by user id past one primary",
)


def pick_track(rng: random.Random, mix: tuple[tuple[Track, float], ...]) -> Track:
    """One track drawn with the mix's weights."""
    draw = rng.random()
    for track, weight in mix:
        draw -= weight
        if draw < 0:
            return track
    return mix[-1][0]


@dataclass
class CodeBuffer:
    """A candidate's editor buffer, one line longer at each ``grow``.

    The first line names the candidate, so a code snapshot of someone else's buffer is
    recognised as foreign. Code for the coding track (Python), notes otherwise.
    """

    owner: str
    track: Track
    lines: int = 0

    @property
    def language(self) -> str:
        return "python" if self.track == "coding" else "markdown"

    def grow(self) -> str:
        """The buffer with one more line."""
        self.lines += 1
        body = _CODE_LINES if self.track == "coding" else _NOTES_LINES
        mark = "#" if self.track == "coding" else "<!--"
        header = f"{mark} candidate {self.owner}" + ("" if self.track == "coding" else " -->")
        shown = [body[i % len(body)] for i in range(self.lines)]
        return "\n".join([header, *shown]) + "\n"


class CandidateScript:
    """The lines one candidate says, and its pacing, drawn from ``rng``."""

    def __init__(self, rng: random.Random, track: Track, *, stuck_rate: float = 0.12) -> None:
        self.rng = rng
        self.track = track
        self.stuck_rate = stuck_rate

    def next_line(self) -> str:
        """A canned line of the track; now and then (``stuck_rate``) one asking for a hint."""
        if self.rng.random() < self.stuck_rate:
            return self.rng.choice(STUCK_LINES)
        return self.rng.choice(_LINES[self.track])

    def jitter(self, mean_s: float, spread: float = 0.5) -> float:
        """A delay around ``mean_s``: uniform in ``mean_s * (1 ± spread)``."""
        return max(0.0, mean_s * (1 + self.rng.uniform(-spread, spread)))

    def exponential(self, rate_per_min: float) -> float:
        """Seconds to the next event of a Poisson process; infinite when the rate is 0."""
        if rate_per_min <= 0:
            return float("inf")
        return self.rng.expovariate(rate_per_min / 60.0)
