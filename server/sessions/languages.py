"""Which languages a session's code can run in on this host."""

from __future__ import annotations

from scoring.code_runner import supported_languages
from server.errors import InvalidField

_ALIASES = {"js": "javascript", "py": "python", "python3": "python", "node": "javascript"}


def runnable_language(language: str) -> str:
    """The runner's name for ``language``; InvalidField (naming ``language``) when this host
    cannot run it (JavaScript needs node)."""
    name = language.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in supported_languages():
        runnable = ", ".join(supported_languages())
        raise InvalidField(
            f"code in {language!r} cannot run here; use one of: {runnable}", field="language"
        )
    return name
