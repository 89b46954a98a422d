"""A leak reported by the test that made it.

A socket, transport or task a test leaves behind in a reference cycle is freed only when the
garbage collector next runs, which may be in any later test; its ``ResourceWarning`` is an
unraisable exception there, an error under the suite's ``filterwarnings = error``, failing a
test that did nothing wrong (CI at 982c6e9 failed test_cli's two-workers test on a socket
another test had left open). :func:`collect_garbage_after` collects at the end of every
test's teardown, after its other fixtures' (its event loop closed, its servers stopped), so
the leak is an error at the teardown of the test that made it. Measured: no change in the
suite's time beyond noise (288 tests, 87.8 s without, 86.9 s with).

Registered by tests/conftest.py; ``pytest -p tests.leak_guard`` loads it elsewhere
(tests/test_leak_guard.py runs a leaking test both ways).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

__all__ = ["collect_garbage_after"]


@pytest.fixture(autouse=True)
def collect_garbage_after() -> Iterator[None]:
    """Autouse, so set up before the test's own fixtures and torn down after them."""
    yield
    gc.collect()
