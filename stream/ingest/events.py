"""Segment's event spec as pydantic models, and the records the collector writes to Kafka.

Pure: no I/O; the collector passes in the parsed body and the time it received it.

One accepted event becomes one :class:`Record` on the events topic (the contract
with the worker): key ``userId``, else ``anonymousId`` (UTF-8); value the orjson of ::

    {"type": "track", "messageId": "…", "userId": "…", "anonymousId": "…",
     "timestamp": "2024-05-01T12:00:00.000Z", "ts": 1714564800000, "receivedAt": "…",
     "sentAt": "…", "originalTimestamp": "…", "context": {…}, "integrations": {…},
     …the type's own fields…, …every other field the client sent but ``writeKey``…}

The type's own fields: ``event`` and ``properties`` (track); ``traits`` (identify);
``properties``, ``name``, ``category`` (page, screen); ``groupId`` and ``traits``
(group); ``previousId`` (alias). Absent values are left out (no ``userId``, no
``sentAt``, no page ``name``…), ``integrations`` when empty too. Times are ISO 8601
UTC with milliseconds and ``Z``; ``ts`` is ``timestamp`` in epoch milliseconds. Fields
the collector sets win over client fields of the same name.

Event time as Segment computes it: when the client gave a time (``originalTimestamp``,
else ``timestamp``) and a ``sentAt`` is known (the event's own, else the batch's),
``timestamp = receivedAt - (sentAt - originalTimestamp)``, which cancels the
client's clock skew; with no ``sentAt`` the client's time is kept; with no client
time, ``timestamp = receivedAt``.

Hostile input is refused with the field at fault, never by crashing: times outside
years 1 to 9999, event times (after the correction) outside :data:`EARLIEST_EVENT_MS`
to :data:`LATEST_EVENT_MS`, and events nested deeper than :data:`MAX_DEPTH` (the JSON
encoder, and the profile that keeps the event, would fail on them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from uuid import uuid4

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from stream.state.profile import EARLIEST_MS, LATEST_MS, iso, parse_time

#: Largest event Segment accepts, as serialised JSON (bytes).
MAX_EVENT_BYTES = 32 << 10
#: Largest request body Segment accepts, after decompression (bytes).
MAX_REQUEST_BYTES = 500 << 10
#: Prefix of the ``messageId`` the collector gives events that came without one.
MESSAGE_ID_PREFIX = "segstream-"
#: The ``kind`` of :func:`normalise` for a batch request (``{"batch": [...]}``).
BATCH = "batch"
#: Deepest nesting of objects and arrays in one event, the event itself being level 1
#: (``{"properties": {"a": [1]}}`` is 3 deep). The profile keeping an event nests it a few
#: levels deeper, and orjson refuses to encode past 254 levels.
MAX_DEPTH = 32
#: Event times (after clock-skew correction) the engine accepts: 1970 to the end of 2999
#: (UTC), in epoch ms, so that every window and deadline after one stays writable.
EARLIEST_EVENT_MS, LATEST_EVENT_MS = 0, 32_503_679_999_999


def _identifier(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a string or a number, got a boolean")
    return str(value) if isinstance(value, (int, float)) else value


def _instant(value: Any) -> int:
    example = "an ISO 8601 time like '2024-05-01T12:00:00.000Z'"
    if not isinstance(value, str):
        raise ValueError(f"must be {example}, got {_describe(value)}")
    try:
        ms = parse_time(value)
    except ValueError:
        raise ValueError(f"must be {example}, got {_describe(value)}") from None
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError(f"must be a time in the years 1 to 9999 (UTC), got {_describe(value)}")
    return ms


def _object(value: Any) -> Any:
    return {} if value is None else value


#: A user, group or message id: a non-empty string, numbers turned into strings.
Identifier = Annotated[
    str,
    BeforeValidator(_identifier),
    StringConstraints(min_length=1),
    WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]}),
]
#: An ISO 8601 time, held as epoch milliseconds.
Instant = Annotated[int, PlainValidator(_instant), WithJsonSchema({"type": "string", "format": "date-time"})]
#: A JSON object; ``null`` reads as ``{}``.
JsonObject = Annotated[dict[str, Any], BeforeValidator(_object), WithJsonSchema({"type": ["object", "null"]})]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class Message(BaseModel):
    """The fields every Segment call shares; unknown top-level fields are kept."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel)

    type: str = ""
    message_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    user_id: Identifier | None = Field(None, validate_default=True)
    timestamp: Instant | None = None
    original_timestamp: Instant | None = None
    sent_at: Instant | None = None
    context: JsonObject = {}
    integrations: JsonObject = {}

    @field_validator("user_id", mode="before")
    @classmethod
    def _anonymous(cls, value: Any, info: ValidationInfo) -> Any:
        """RudderStack's SDKs send ``"userId": ""`` for anonymous users: no userId, when an anonymousId is given."""
        return None if value == "" and info.data.get("anonymous_id") is not None else value

    @field_validator("user_id", mode="after")
    @classmethod
    def _someone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("anonymous_id") is None:
            raise ValueError("is required when anonymousId is absent (a non-empty string or number)")
        return value

    def payload(self) -> dict[str, Any]:
        """The fields of this call's type, as they go into the record."""
        raise NotImplementedError


class Track(Message):
    """``track``: something the user did, named by ``event``."""

    type: Literal["track"] = "track"
    event: NonEmpty
    properties: JsonObject = {}

    def payload(self) -> dict[str, Any]:
        return {"event": self.event, "properties": self.properties}


class Identify(Message):
    """``identify``: who the user is, as ``traits``."""

    type: Literal["identify"] = "identify"
    traits: JsonObject = {}

    def payload(self) -> dict[str, Any]:
        return {"traits": self.traits}


class _View(Message):
    name: str | None = None
    category: str | None = None
    properties: JsonObject = {}

    def payload(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"properties": self.properties}
        if self.name is not None:
            fields["name"] = self.name
        if self.category is not None:
            fields["category"] = self.category
        return fields


class Page(_View):
    """``page``: a web page view, optionally with ``name`` and ``category``."""

    type: Literal["page"] = "page"


class Screen(_View):
    """``screen``: a mobile screen view, optionally with ``name`` and ``category``."""

    type: Literal["screen"] = "screen"


class Group(Message):
    """``group``: the user belongs to ``groupId`` (a company, a team), with its ``traits``."""

    type: Literal["group"] = "group"
    group_id: Identifier
    traits: JsonObject = {}

    def payload(self) -> dict[str, Any]:
        return {"groupId": self.group_id, "traits": self.traits}


class Alias(Message):
    """``alias``: ``previousId`` and ``userId`` are the same person."""

    type: Literal["alias"] = "alias"
    previous_id: Identifier
    user_id: Identifier

    def payload(self) -> dict[str, Any]:
        return {"previousId": self.previous_id}


#: The model of each Segment call type.
MODELS: dict[str, type[Message]] = {m.model_fields["type"].default: m for m in (Track, Identify, Page, Screen, Group, Alias)}


class Batch(BaseModel):
    """A batch request: ``{"batch": [...], "sentAt", "context", "integrations"}``."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel)

    batch: list[Any]
    sent_at: Instant | None = None
    context: JsonObject = {}
    integrations: JsonObject = {}


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted event as it goes to the events topic."""

    type: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class EventError:
    """Why an event was refused: its batch ``index`` (``None`` for a single call), the field at fault, what to do.

    ``reason`` is the counter it goes to: ``invalid_field`` or ``too_large``.
    """

    index: int | None
    field: str
    message: str
    reason: str = "invalid_field"

    def public(self) -> dict[str, Any]:
        """The error as the HTTP response lists it."""
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(slots=True)
class Outcome:
    """What became of a request's events: the records to produce and the errors."""

    records: list[Record] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)


def corrected_time(received_at: int, sent_at: int | None, original: int | None) -> int:
    """The event time in epoch ms, the client's clock skew removed (see the module docstring).

    >>> corrected_time(received_at=10_000, sent_at=9_000, original=8_500)  # sent 500 ms after it happened
    9500
    """
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def new_message_id() -> str:
    """A fresh ``messageId`` for an event that came without one."""
    return f"{MESSAGE_ID_PREFIX}{uuid4()}"


def normalise(body: dict[str, Any], kind: str, received_at: int, size: int) -> Outcome:
    """Validate a request's events and turn the good ones into records.

    ``kind`` is a call type (``track``…) for the single-event endpoints, where the
    body is the event, or :data:`BATCH`. ``size`` is the body's length in bytes.
    Bad events become :class:`EventError` naming the field, e.g. ``batch[3].event``;
    the others are still accepted.

    >>> out = normalise({"userId": 7, "event": "Signed Up"}, "track", received_at=0, size=40)
    >>> out.records[0].key, out.errors
    (b'7', [])
    """
    if kind != BATCH:
        if size > MAX_EVENT_BYTES:
            return Outcome(errors=[_too_large(None, "body", size)])
        return _events([(None, "", body)], MODELS[kind], received_at, _NO_ENVELOPE, check_size=False)
    try:
        envelope = Batch.model_validate(body)
    except ValidationError as exc:
        return Outcome(errors=_errors(exc, None, ""))
    # The envelope's context and integrations go into every event, at the same level.
    if (deep := too_deep({"context": envelope.context, "integrations": envelope.integrations})) is not None:
        return Outcome(errors=[_too_deep(None, "", deep)])
    if (error := _context_error(envelope.context, None, "")) is not None:
        return Outcome(errors=[error])
    items = [(i, f"batch[{i}].", event) for i, event in enumerate(envelope.batch)]
    # No event can be larger than the body carrying it.
    return _events(items, None, received_at, envelope, check_size=size > MAX_EVENT_BYTES)


#: What a single call has around its event: nothing.
_NO_ENVELOPE = Batch(batch=[])


def _events(
    items: list[tuple[int | None, str, Any]],
    model: type[Message] | None,
    received_at: int,
    envelope: Batch,
    check_size: bool,
) -> Outcome:
    outcome = Outcome()
    for index, prefix, raw in items:
        where = prefix.rstrip(".") or "body"
        if not isinstance(raw, dict):
            outcome.errors.append(EventError(index, where, f"{where} must be a JSON object, got {_describe(raw)}"))
            continue
        if (deep := too_deep(raw)) is not None:
            outcome.errors.append(_too_deep(index, prefix, deep))
            continue
        if check_size and (size := len(orjson.dumps(raw))) > MAX_EVENT_BYTES:
            outcome.errors.append(_too_large(index, where, size))
            continue
        kind = raw.get("type")
        chosen = model or (MODELS.get(kind) if isinstance(kind, str) else None)
        if chosen is None:
            message = f"{prefix}type must be one of {', '.join(MODELS)}, got {_describe(raw.get('type'))}"
            outcome.errors.append(EventError(index, f"{prefix}type", message))
            continue
        try:
            event = chosen.model_validate(raw)
        except ValidationError as exc:
            outcome.errors.extend(_errors(exc, index, prefix))
            continue
        if (error := _context_error(event.context, index, prefix)) is not None:
            outcome.errors.append(error)
            continue
        sent_at = event.sent_at if event.sent_at is not None else envelope.sent_at
        original = event.original_timestamp if event.original_timestamp is not None else event.timestamp
        ts = corrected_time(received_at, sent_at, original)
        if not EARLIEST_EVENT_MS <= ts <= LATEST_EVENT_MS:
            outcome.errors.append(_out_of_range(index, prefix, event, ts, corrected=sent_at is not None and original is not None))
            continue
        outcome.records.append(_record(event, ts, sent_at, original, received_at, envelope))
    return outcome


def too_deep(value: dict[str, Any] | list[Any], limit: int = MAX_DEPTH) -> str | None:
    """The path of the first object or array in ``value`` nested deeper than ``limit`` levels, else ``None``.

    ``value`` itself is level 1; iterative, so any depth is safe to check.

    >>> too_deep({"properties": {"a": [1]}}, limit=2), too_deep({"properties": {"a": 1}}, limit=2)
    ('properties.a', None)
    """
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        node, depth, trail = stack.pop()
        if depth > limit:
            parts: list[str] = []
            while trail is not None:
                trail, key = trail
                parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
            return "".join(reversed(parts)).lstrip(".")
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (trail, key)))
    return None


def _context_error(context: dict[str, Any], index: int | None, prefix: str) -> EventError | None:
    """Segment's ``context.traits`` and ``context.consent`` are objects (the worker reads them as such)."""
    for name in ("traits", "consent"):
        if context.get(name) is not None and not isinstance(context[name], dict):
            field = f"{prefix}context.{name}"
            return EventError(index, field, f"{field} must be a JSON object, got {_describe(context[name])}")
    return None


def _too_deep(index: int | None, prefix: str, path: str) -> EventError:
    field = (prefix + path)[:200]
    message = f"{field} is nested more than {MAX_DEPTH} levels deep (objects and arrays in the event); send flatter data"
    return EventError(index, field, message)


def _out_of_range(index: int | None, prefix: str, event: Message, ts: int, corrected: bool) -> EventError:
    field = prefix + ("originalTimestamp" if event.original_timestamp is not None else "timestamp")
    when = f"at {iso(ts)}" if EARLIEST_MS <= ts <= LATEST_MS else "outside the years 1 to 9999"
    how = " once corrected for clock skew (receivedAt - (sentAt - originalTimestamp))" if corrected else ""
    message = (
        f"{field} puts the event {when}{how}, not between {iso(EARLIEST_EVENT_MS)} and {iso(LATEST_EVENT_MS)}: "
        "send when the event happened, and sentAt from the same clock"
    )
    return EventError(index, field, message)


def _record(event: Message, ts: int, sent_at: int | None, original: int | None, received_at: int, envelope: Batch) -> Record:
    value: dict[str, Any] = {"type": event.type, "messageId": event.message_id or new_message_id()}
    if event.user_id is not None:
        value["userId"] = event.user_id
    if event.anonymous_id is not None:
        value["anonymousId"] = event.anonymous_id
    value["timestamp"] = iso(ts)
    value["ts"] = ts
    value["receivedAt"] = iso(received_at)
    if sent_at is not None:
        value["sentAt"] = iso(sent_at)
    if original is not None:
        value["originalTimestamp"] = iso(original)
    value["context"] = {**envelope.context, **event.context} if envelope.context else event.context
    integrations = {**envelope.integrations, **event.integrations} if envelope.integrations else event.integrations
    if integrations:
        value["integrations"] = integrations
    value.update(event.payload())
    for name, extra in (event.model_extra or {}).items():
        if name != "writeKey":
            value.setdefault(name, extra)
    key = event.user_id if event.user_id is not None else event.anonymous_id
    return Record(event.type, key.encode(), orjson.dumps(value))  # type: ignore[union-attr]


def _too_large(index: int | None, where: str, size: int) -> EventError:
    message = f"{where} is {size} bytes; Segment's limit is {MAX_EVENT_BYTES} bytes per event: send less in properties or traits"
    return EventError(index, where, message, reason="too_large")


_MESSAGES = {
    "missing": "is required",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def _errors(exc: ValidationError, index: int | None, prefix: str) -> list[EventError]:
    errors = []
    for error in exc.errors(include_url=False):
        # Errors about a defaulted field carry its Python name: spell it as on the wire.
        loc = ".".join(to_camel(part) if isinstance(part, str) else str(part) for part in error["loc"])
        path = prefix + loc if loc else prefix.rstrip(".") or "body"
        if error["type"] == "value_error":
            detail = str(error["ctx"]["error"])
        elif error["type"] == "literal_error":
            detail = f"must be {error['ctx']['expected']} (or absent) on this endpoint, got {_describe(error['input'])}"
        elif error["type"] in _MESSAGES:
            detail = _MESSAGES[error["type"]]
            if error["type"] != "missing":
                detail += f", got {_describe(error['input'])}"
        else:
            detail = error["msg"]
        errors.append(EventError(index, path, f"{path} {detail}"))
    return errors


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list, bool)):
        return {dict: "an object", list: "an array", bool: "a boolean"}[type(value)]
    return repr(value) if isinstance(value, str) and len(value) <= 40 else type(value).__name__
