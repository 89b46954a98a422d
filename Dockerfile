# Mentara interview server image. Built by docker-compose.yml (server-1, server-2, runner); see
# the README (Production-like stack). Only the runtime lock and the three packages that serve go
# in: no embedded Postgres or Redis, no load harness, no benchmark (their extras and locks stay
# out; see the README's table of locks).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MENTARA_DATA_DIR=/var/lib/mentara

# bubblewrap sandboxes every candidate run (Debian's bwrap is not setuid: it relies on
# unprivileged user namespaces); Node.js runs the JavaScript track.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap nodejs \
    && rm -rf /var/lib/apt/lists/*

# The server runs unprivileged; the code it installs stays owned by root, so it is read-only
# to the process that runs candidate code.
RUN groupadd --system --gid 10001 mentara \
    && useradd --system --uid 10001 --gid mentara --home-dir /home/mentara --create-home \
        --shell /usr/sbin/nologin mentara \
    && mkdir -p /var/lib/mentara \
    && chown mentara:mentara /var/lib/mentara

WORKDIR /app

# Dependencies first, from the runtime lock only (what server/ imports in production, checked by
# tests/test_locks.py): this layer is rebuilt when the lock changes, not on every source edit.
COPY requirements.lock pyproject.toml ./
RUN pip install -r requirements.lock

# Then the source. --no-build-isolation builds with the locked setuptools installed above.
COPY pyproject.toml README.md* ./
COPY protocol/ ./protocol/
COPY server/ ./server/
COPY scoring/ ./scoring/
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

USER mentara
EXPOSE 8000

# Liveness only; readiness (/readyz: Redis and Postgres reachable) is checked by the
# orchestrator. The slim image has no curl, so the standard library does the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# uvicorn handles SIGTERM: sockets get 1001 and the workers drain before they exit.
STOPSIGNAL SIGTERM
CMD ["mentara", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
