"""The contract, machine-readable (PROTOCOL.md §7): ``GET /v1/asyncapi.json`` (protocol v1 as
AsyncAPI 3, generated from ``protocol/``) and ``GET /v1/openapi.json`` (the HTTP API as
OpenAPI 3.1). Public: both describe the API, neither holds data. Each body is rendered once
per process and is byte for byte the copy kept in ``docs/``."""

from __future__ import annotations

from functools import cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol import asyncapi
from server import openapi

_HEADERS = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


@cache
def _asyncapi_bytes() -> bytes:
    return asyncapi.render().encode()


@cache
def _openapi_bytes() -> bytes:
    return openapi.render().encode()


async def asyncapi_json(request: Request) -> Response:
    return Response(_asyncapi_bytes(), media_type="application/json", headers=_HEADERS)


async def openapi_json(request: Request) -> Response:
    return Response(_openapi_bytes(), media_type="application/json", headers=_HEADERS)


CONTRACT_ROUTES = [
    Route("/v1/asyncapi.json", asyncapi_json, methods=["GET"]),
    Route("/v1/openapi.json", openapi_json, methods=["GET"]),
]
