"""The report's summary, written by Claude when it is configured.

:meth:`ClaudeSummaryWriter.write` returns the text, or None when the model cannot be reached,
answers badly or takes longer than ``timeout_s`` (after ``attempts`` tries): the report then
keeps the summary built from the evidence ledger. It never raises but ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import logging

import anthropic

from scoring.report import Finding, Report

log = logging.getLogger("mentara.summary")

_PROMPT = """\
You are writing the summary of a mock technical interview report for the candidate.
Write 3 to 5 sentences, second person, encouraging and specific: what went well, what to
work on next. Use only the findings below; do not invent scores or events.

Overall: {overall:.2f} of 4 ({band}).
Strengths:
{strengths}
Weaknesses:
{weaknesses}
"""


def _findings(findings: tuple[Finding, ...]) -> str:
    lines = [
        f"- {f.title} ({f.score:.1f}, {f.band_label}): " + "; ".join(q.note for q in f.evidence[:3])
        for f in findings
    ]
    return "\n".join(lines) or "- (none observed)"


class ClaudeSummaryWriter:
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        timeout_s: float = 30.0,
        attempts: int = 2,
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.attempts = attempts
        # A shared client (the worker's one, server.claude_client) is closed by its owner.
        self._owns_client = client is None
        self._client = (
            anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url)
            if client is None
            else client
        ).with_options(max_retries=1)

    async def write(self, report: Report) -> str | None:
        prompt = _PROMPT.format(
            overall=report.overall,
            band=report.band_label,
            strengths=_findings(report.strengths),
            weaknesses=_findings(report.weaknesses),
        )
        for attempt in range(1, self.attempts + 1):
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await self._client.messages.create(
                        model=self.model,
                        max_tokens=400,
                        messages=[{"role": "user", "content": prompt}],
                    )
                text = "".join(getattr(b, "text", "") for b in message.content).strip()
                if text and message.stop_reason != "max_tokens":
                    return text
                log.warning(
                    "summary attempt %d unusable (stop_reason %s)", attempt, message.stop_reason
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the ledger summary stands in
                log.warning("summary attempt %d failed: %s", attempt, type(exc).__name__)
        return None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()
