"""The collector's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Request bodies are the JSON Schemas of the pydantic models that validate them
(:mod:`stream.ingest.events`), so the description cannot drift from the checks;
responses are the collector's answers (see :mod:`stream.ingest.collector`).
Point any OpenAPI tool at it, e.g. ``schemathesis run http://127.0.0.1:8088/openapi.json``
(the fuzz tests in ``tests/unit/test_fuzz_collector.py`` do).

>>> doc = collector_openapi({"track": "track", "batch": "batch"})
>>> sorted(doc["paths"]), doc["paths"]["/v1/track"]["post"]["operationId"]
(['/health', '/openapi.json', '/stats', '/v1/batch', '/v1/track'], 'track_track')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from stream.ingest.events import BATCH, MAX_DEPTH, MAX_EVENT_BYTES, MAX_REQUEST_BYTES, MODELS, Batch

_REF = "#/components/schemas/{model}"
_JSON_BODY_TYPES = ("application/json", "text/plain")  # analytics.js sends text/plain to skip the CORS preflight


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF)
    if model is not Batch:
        # Enforced by a validator, which JSON Schema cannot see: somebody must be named.
        schema["anyOf"] = [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in ("userId", "anonymousId")]
    return schema


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {model.__name__: _schema(model) for model in MODELS.values()}
    batch = _schema(Batch)
    # In a batch each event names its type.
    batch["properties"]["batch"]["items"] = {
        "anyOf": [{"allOf": [_ref(m.__name__), {"required": ["type"]}]} for m in MODELS.values()]
    }
    schemas["Batch"] = batch
    schemas["Success"] = {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"const": True}},
    }
    schemas["EventError"] = {
        "type": "object",
        "required": ["index", "field", "message"],
        "properties": {
            "index": {"type": ["integer", "null"], "description": "The event's index in the batch; null for a single call."},
            "field": {"type": "string", "description": "The field at fault, e.g. batch[3].event."},
            "message": {"type": "string"},
        },
    }
    schemas["Failure"] = {
        "type": "object",
        "required": ["success", "code", "message"],
        "properties": {
            "success": {"const": False},
            "code": {"type": "string", "description": "The counter the refusal went to, e.g. invalid_field, bad_json."},
            "message": {"type": "string", "description": "What was wrong and what to do."},
            "errors": {"type": "array", "items": _ref("EventError")},
            "accepted": {"type": "integer", "minimum": 0, "description": "Events of the request accepted anyway."},
            "error": {"type": "string"},
        },
    }
    return schemas


def _answer(description: str, schema: str, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if retry:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}
    return answer


_EVENT_ANSWERS = {
    "200": _answer("Kafka acknowledged every event.", "Success"),
    "400": _answer("Bad JSON or gzip, or refused events (each named by index and field; the others were accepted).", "Failure"),
    "401": _answer("Missing, unknown or revoked write key.", "Failure"),
    "413": _answer(f"Body over {MAX_REQUEST_BYTES} bytes after decompression.", "Failure"),
    "415": _answer("Content-Encoding other than gzip or identity.", "Failure"),
    "429": _answer("Over the write key's rate limit.", "Failure", retry=True),
    "503": _answer("Kafka did not acknowledge, or the keys could not be read yet: retry.", "Failure", retry=True),
}


def _event_operation(path: str, kind: str) -> dict[str, Any]:
    schema = "Batch" if kind == BATCH else MODELS[kind].__name__
    what = "a batch of events" if kind == BATCH else f"one {kind} call"
    return {
        "operationId": f"{path}_{kind}",
        "summary": f"Send {what}.",
        "description": (
            f"At most {MAX_EVENT_BYTES} bytes per event and {MAX_REQUEST_BYTES} bytes per request (after gzip), "
            f"objects and arrays nested at most {MAX_DEPTH} levels, event times (clock skew removed) from 1970 to 2999. "
            "The body may be gzip-compressed (Content-Encoding: gzip)."
        ),
        "security": [{"writeKeyBasic": []}, {}],  # or "writeKey" in the body
        "requestBody": {
            "required": True,
            "content": {media: {"schema": _ref(schema)} for media in _JSON_BODY_TYPES},
        },
        "responses": _EVENT_ANSWERS,
    }


def collector_openapi(paths: Mapping[str, str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a collector serving ``paths`` (``/v1/<path>`` -> call type or ``batch``)."""
    operations: dict[str, Any] = {f"/v1/{path}": {"post": _event_operation(path, kind)} for path, kind in paths.items()}
    operations["/health"] = {
        "get": {
            "operationId": "health",
            "responses": {
                "200": {
                    "description": "The collector runs.",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ok"}}}}},
                }
            },
        }
    }
    operations["/stats"] = {
        "get": {
            "operationId": "stats",
            "summary": "The collector's counters.",
            "security": [{"apiKey": []}],
            "responses": {
                "200": {
                    "description": "Accepted events by type and source, refused events and requests by reason.",
                    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
                },
                "401": _answer("Missing or unknown API key.", "Failure"),
                "403": _answer("The API key's scope is too weak.", "Failure"),
                "503": _answer("The keys could not be read yet: retry.", "Failure"),
            },
        }
    }
    operations["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "responses": {"200": {"description": "This document.", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "segstream collector",
            "version": "1",
            "description": "Segment's HTTP Tracking API: events in, Kafka's acknowledgement out.",
        },
        "paths": operations,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "writeKeyBasic": {"type": "http", "scheme": "basic", "description": "The write key as username, the password empty."},
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A query-API key of scope read."},
            },
        },
    }


def openapi_route(paths: Mapping[str, str]) -> Handler:
    """An aiohttp handler serving :func:`collector_openapi` of ``paths`` (built once)."""
    body = orjson.dumps(collector_openapi(paths))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi
