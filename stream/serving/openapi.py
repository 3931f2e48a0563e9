"""The query API's OpenAPI 3.1 description, served at ``GET /openapi.json`` (with a read key, like every endpoint but ``/health``).

Every error is ``{"error": "..."}``; every endpoint but ``/health`` needs
``Authorization: Bearer <API key>`` (scope read; admin for ``DELETE
/v1/customers/{id}`` and ``POST /v1/rules``). The fuzz tests in
``tests/unit/test_fuzz_api.py`` generate requests from this document.

>>> doc = api_openapi(default_limit=100, max_limit=1000)
>>> doc["paths"]["/v1/segments/{name}/members"]["get"]["parameters"][2]["schema"]
{'type': 'integer', 'minimum': 1, 'maximum': 1000, 'default': 100}
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from stream.models.reco import DEFAULT_COUNT, MAX_COUNT

_REF = "#/components/schemas/{}"
_STRING = {"type": "string"}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name)}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, _ref("Error"))


_AUTH_ERRORS = {
    "401": _error("Missing, unknown or revoked API key."),
    "403": _error("The API key's scope is too weak for this endpoint."),
    "503": _error("Redis (state or keys) does not answer: retry."),
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string", "minLength": 1}}


_CUSTOMER = _path("id", "A customer id, percent-encoded ('/' as %2F).")


def _get(operation_id: str, summary: str, ok: dict[str, Any], *errors: str, parameters: list[Any] | None = None) -> dict[str, Any]:
    responses = {"200": ok, **_AUTH_ERRORS}
    for status in errors:
        responses[status] = _error({"400": "A parameter is invalid.", "404": "Not found."}[status])
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _schemas() -> dict[str, Any]:
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": _STRING}},
        "Profile": {
            "type": "object",
            "required": ["customer_id", "traits", "event_counts", "segments", "scores"],
            "properties": {
                "customer_id": _STRING,
                "traits": {"type": "object"},
                "event_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "revenue": {"type": "number"},
                "first_seen": _TIME,
                "last_seen": _TIME,
                "segments": {"type": "array", "items": _STRING},
                "groups": {"type": "object"},
                "aliases": {"type": "array", "items": _STRING},
                "recent_events": {"type": "array", "items": {"type": "object"}},
                "scores": {"type": "object"},
            },
        },
        "Memberships": {
            "type": "object",
            "required": ["customer_id", "segments"],
            "properties": {
                "customer_id": _STRING,
                "segments": {
                    "type": "array",
                    "items": {"type": "object", "required": ["segment", "entered_at"], "properties": {"segment": _STRING, "entered_at": _TIME}},
                },
            },
        },
        "Explanation": {
            "type": "object",
            "required": ["customer_id", "member", "segment", "holds", "reason", "condition"],
            "properties": {
                "customer_id": _STRING,
                "member": {"type": "boolean"},
                "segment": _STRING,
                "holds": {"type": "boolean"},
                "reason": _STRING,
                "deadline": _TIME,
                "group": {"type": ["string", "null"]},
                "condition": {"type": "object"},
            },
        },
        "Members": {
            "type": "object",
            "required": ["segment", "members", "next_cursor"],
            "properties": {"segment": _STRING, "members": {"type": "array", "items": _STRING}, "next_cursor": {"type": ["string", "null"]}},
        },
        "RuleFiles": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": _STRING,
                    "description": "Rule file name (a plain name ending in .yaml or .yml) -> its YAML text.",
                }
            },
        },
    }


def api_openapi(default_limit: int, max_limit: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the query API (``limit`` of member pages: 1..``max_limit``, default ``default_limit``)."""
    segment_list = {
        "type": "object",
        "required": ["segments"],
        "properties": {
            "segments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "members"],
                    "properties": {
                        "name": _STRING,
                        "description": {"type": ["string", "null"]},
                        "members": {"type": "integer", "minimum": 0},
                        "source": {"type": ["string", "null"]},
                    },
                },
            }
        },
    }
    rules = {
        "type": "object",
        "required": ["version", "segments"],
        "properties": {"version": {"type": ["string", "null"]}, "segments": {"type": "array", "items": _STRING}},
    }
    recommendations = {
        "type": "object",
        "required": ["customer_id", "source", "model_version", "items"],
        "properties": {
            "customer_id": _STRING,
            "source": {"enum": ["personal", "popular"]},
            "model_version": {"type": "integer"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["product_id", "category", "score"],
                    "properties": {"product_id": _STRING, "category": {"type": ["string", "null"]}, "score": {"type": "number"}},
                },
            },
        },
    }
    forget_ok = _json(
        "The forget request is in Kafka; the owning worker erases the profile.",
        {"type": "object", "required": ["customer_id", "status", "suppress"], "properties": {"customer_id": _STRING, "suppress": {"type": "boolean"}}},
    )
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "operationId": "health",
                "security": [],
                "responses": {
                    "200": _json("Redis answers.", {"type": "object", "properties": {"status": {"const": "ok"}}}),
                    "503": _json("Redis does not answer.", {"type": "object"}),
                },
            }
        },
        "/v1/customers/{id}": {
            "get": _get("customer", "A customer's profile.", _json("The profile.", _ref("Profile")), "404", parameters=[_CUSTOMER]),
            "delete": {
                "operationId": "forget",
                "summary": "Forget a customer (scope admin).",
                "parameters": [
                    _CUSTOMER,
                    {"name": "suppress", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}},
                ],
                "responses": {"202": forget_ok, **_AUTH_ERRORS},
            },
        },
        "/v1/customers/{id}/segments": {
            "get": _get("customer_segments", "A customer's segments.", _json("Memberships.", _ref("Memberships")), "404", parameters=[_CUSTOMER]),
        },
        "/v1/customers/{id}/recommendations": {
            "get": _get(
                "recommendations",
                "The top products not yet bought by a customer (popular ones for a customer without an embedding).",
                _json("Recommendations.", recommendations),
                "400",
                "404",
                parameters=[
                    _CUSTOMER,
                    {"name": "n", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": DEFAULT_COUNT}},
                ],
            ),
        },
        "/v1/customers/{id}/segments/{segment}/explain": {
            "get": _get(
                "explain",
                "Why a customer is or is not in a segment.",
                _json("The rule tree with each condition's verdict.", _ref("Explanation")),
                "404",
                parameters=[_CUSTOMER, _path("segment", "A segment name.")],
            ),
        },
        "/v1/segments": {"get": _get("segments", "Every segment of the deployed rules.", _json("Segments.", segment_list))},
        "/v1/segments/{name}/members": {
            "get": _get(
                "members",
                "A page of a segment's members, in id (byte) order.",
                _json("Members.", _ref("Members")),
                "400",
                "404",
                parameters=[
                    _path("name", "A segment name."),
                    {"name": "cursor", "in": "query", "required": False, "description": "The previous page's next_cursor.", "schema": _STRING},
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
                    },
                ],
            ),
        },
        "/v1/rules": {
            "get": _get("rules", "The deployed rule version and backfill progress.", _json("Rules.", rules)),
            "post": {
                "operationId": "deploy_rules",
                "summary": "Validate and deploy rule files (scope admin).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RuleFiles")}}},
                "responses": {"200": _json("Deployed (or unchanged).", rules), "400": _error("Bad body or invalid rules, every problem listed."), **_AUTH_ERRORS},
            },
        },
        "/v1/stats": {
            "get": _get("stats", "The worker's counters.", _json("Counters.", {"type": "object", "additionalProperties": {"type": "integer"}}))
        },
        "/v1/models": {"get": _get("models", "The newest model snapshot.", _json("Versions and quality report.", {"type": "object"}), "404")},
        "/v1/segments/{name}/sizes": {
            "get": _get(
                "segment_sizes",
                "A segment's member count over time (sampled by the API), downsampled to at most 500 points.",
                _json("Points: t, at, members, min, max.", {"type": "object"}),
                "400",
                "404",
                parameters=[
                    _path("name", "A segment name."),
                    {"name": "from", "in": "query", "required": False, "description": "ISO 8601 or epoch ms (default: 24 h ago).", "schema": _STRING},
                    {"name": "to", "in": "query", "required": False, "description": "ISO 8601 or epoch ms (default: now).", "schema": _STRING},
                    {"name": "step", "in": "query", "required": False, "description": "Seconds per point.", "schema": _STRING},
                ],
            ),
        },
        "/v1/analytics/overlap": {
            "get": _get(
                "overlap",
                "The Jaccard matrix of the segments' members and over-segmentation warnings.",
                _json("sizes, matrix, intersections, warnings.", {"type": "object"}),
                "400",
                parameters=[{"name": "segments", "in": "query", "required": False, "description": "Comma-separated names (default: all).", "schema": _STRING}],
            ),
        },
        "/v1/analytics/performance": {
            "get": _get(
                "performance",
                "The last saved treatment-vs-holdout report (segstream analytics performance --save).",
                _json("Per segment: arms, differences with intervals, lifts.", {"type": "object"}),
                "404",
            ),
        },
        "/v1/changes/token": {
            "post": {
                "operationId": "changes_token",
                "summary": "A short-lived token for the live change stream (EventSource cannot send headers).",
                "responses": {"200": _json("token, expires_at.", {"type": "object", "required": ["token", "expires_at"]}), **_AUTH_ERRORS},
            }
        },
        "/metrics": {
            "get": _get("metrics", "Prometheus text.", {"description": "Counters and gauges.", "content": {"text/plain": {"schema": _STRING}}})
        },
        "/openapi.json": {"get": _get("openapi", "This document.", _json("This document.", {"type": "object"}))},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "segstream query API", "version": "1", "description": "Profiles, memberships, segments and their members, from Redis."},
        "paths": paths,
        "security": [{"apiKey": []}],
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key: scope read, or admin."}},
        },
    }


def openapi_route(default_limit: int, max_limit: int) -> Handler:
    """An aiohttp handler serving :func:`api_openapi` (built once)."""
    body = orjson.dumps(api_openapi(default_limit, max_limit))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi
