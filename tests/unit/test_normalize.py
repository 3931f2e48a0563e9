"""Normalization rules (stream.ingest.normalize): labels, currency, trait names, timestamps, the file, idempotence."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.ingest.normalize import (
    BAD_AMOUNT,
    BAD_TIMESTAMP,
    TRAIT_COLLISION,
    UNKNOWN_CURRENCY,
    UNMAPPED_LABEL,
    NormalizationConfig,
    NormalizationError,
    Normalizer,
    load_normalization,
    trait_name,
)

SHIPPED = Path(__file__).resolve().parents[2] / "normalize.yaml"


def normalizer(**config: Any) -> Normalizer:
    return Normalizer(NormalizationConfig.model_validate(config))


@pytest.fixture(scope="module")
def shipped() -> Normalizer:
    return load_normalization(SHIPPED)


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}, "context": {}, **fields}


# --- labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [("iPhone", "Mobile"), ("ANDROID", "Mobile"), (" ios ", "Mobile"), ("macOS", "Desktop"), ("iPad", "Tablet"), ("Mobile", "Mobile")],
)
def test_device_types_take_their_canonical_value(shipped: Normalizer, sent: str, canonical: str) -> None:
    result = shipped.apply(track(context={"device": {"type": sent}}))
    assert result.record["context"]["device"]["type"] == canonical
    assert result.notes == ()


def test_one_label_map_serves_several_fields(shipped: Normalizer) -> None:
    record = track(context={"campaign": {"source": "m.facebook.com"}}, properties={"utm_source": "FB"})
    out = shipped.apply(record).record
    assert out["context"]["campaign"]["source"] == "Facebook"
    assert out["properties"]["utm_source"] == "Facebook"


def test_contains_and_regex_patterns_match_after_exact_aliases() -> None:
    n = normalizer(labels=[{
        "fields": ["properties.source"],
        "values": {"Google": ["adwords"]},
        "contains": {"Newsletter": ["news"]},
        "matches": {"Google": [r"(^|\.)google\.[a-z.]+$"]},
    }])
    assert n.apply(track(properties={"source": "Weekly-NEWSletter"})).record["properties"]["source"] == "Newsletter"
    assert n.apply(track(properties={"source": "www.Google.co.uk"})).record["properties"]["source"] == "Google"
    assert n.apply(track(properties={"source": "AdWords"})).record["properties"]["source"] == "Google"


def test_unmapped_values_are_kept_and_reported_unless_told_not_to() -> None:
    config = {"fields": ["context.device.type"], "values": {"Mobile": ["phone"]}}
    result = normalizer(labels=[config]).apply(track(context={"device": {"type": "smart fridge"}}))
    assert result.record["context"]["device"]["type"] == "smart fridge"
    assert [(n.kind, n.field, n.value) for n in result.notes] == [(UNMAPPED_LABEL, "context.device.type", "smart fridge")]
    quiet = normalizer(labels=[{**config, "report_unmapped": False}])
    assert quiet.apply(track(context={"device": {"type": "smart fridge"}})).notes == ()


def test_non_string_and_absent_label_fields_are_left_alone(shipped: Normalizer) -> None:
    record = track(context={"device": {"type": 3}})
    assert shipped.apply(record).record == record
    assert shipped.apply(track()).record == track()


# --- currency -------------------------------------------------------------------------

CURRENCY = {"base": "USD", "rates": {"EUR": 1.1, "jpy": 0.0067}, "fields": ["revenue", "price", "tax"]}


def test_amounts_are_converted_to_base_and_originals_kept() -> None:
    record = track(properties={"revenue": 100, "price": "20.5", "currency": "eur", "sku": "x"})
    props = normalizer(currency=CURRENCY).apply(record).record["properties"]
    assert props == {
        "revenue": 110.0, "original_revenue": 100,
        "price": 22.55, "original_price": "20.5",
        "currency": "USD", "original_currency": "EUR", "sku": "x",
    }


def test_base_currency_and_no_currency_leave_amounts_alone() -> None:
    n = normalizer(currency=CURRENCY)
    assert n.apply(track(properties={"revenue": 5})).record["properties"] == {"revenue": 5}
    assert n.apply(track(properties={"revenue": 5, "currency": "usd"})).record["properties"] == {"revenue": 5, "currency": "USD"}


def test_unknown_currency_is_left_unconverted_and_reported() -> None:
    record = track(properties={"revenue": 5, "currency": "XYZ"})
    result = normalizer(currency=CURRENCY).apply(record)
    assert result.record == record
    assert [(n.kind, n.value) for n in result.notes] == [(UNKNOWN_CURRENCY, "XYZ")]


def test_an_amount_that_is_not_a_number_leaves_the_event_unconverted() -> None:
    record = track(properties={"revenue": 5, "tax": "n/a", "currency": "EUR"})
    result = normalizer(currency=CURRENCY).apply(record)
    assert result.record == record
    assert [(n.kind, n.field) for n in result.notes] == [(BAD_AMOUNT, "properties.tax")]


# --- trait names and timestamps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "snake", "camel"),
    [
        ("firstName", "first_name", "firstName"),
        ("First Name", "first_name", "firstName"),
        ("first-name", "first_name", "firstName"),
        ("userID", "user_id", "userID"),
        ("HTTPStatus", "http_status", "httpStatus"),
        ("address2", "address2", "address2"),
        ("---", "---", "---"),
        ("A𝜜", "a𝜜", "a𝜜"),  # 𝜜 is upper case with no lower-case form: no word break before it
    ],
)
def test_trait_names(name: str, snake: str, camel: str) -> None:
    assert trait_name(name, "snake") == snake
    assert trait_name(name, "camel") == camel
    assert trait_name(name, "none") == name
    assert trait_name(snake, "snake") == snake and trait_name(camel, "camel") == camel


def test_identify_traits_and_context_traits_are_renamed(shipped: Normalizer) -> None:
    record = {"type": "identify", "userId": "u", "traits": {"firstName": "Ann", "Last Name": "Lee"}, "context": {"traits": {"e-mail": "a@b.c"}}}
    out = shipped.apply(record).record
    assert out["traits"] == {"first_name": "Ann", "last_name": "Lee"}
    assert out["context"]["traits"] == {"e_mail": "a@b.c"}


def test_a_trait_already_in_canonical_case_wins_a_collision() -> None:
    result = normalizer().apply({"type": "identify", "traits": {"firstName": "old", "first_name": "new"}})
    assert result.record["traits"] == {"first_name": "new"}
    assert [(n.kind, n.field) for n in result.notes] == [(TRAIT_COLLISION, "traits.firstName")]


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00.000Z"),
        ("2024-05-01T12:00:00.123456Z", "2024-05-01T12:00:00.123Z"),
        ("2024-05-01", "2024-05-01T00:00:00.000Z"),
        (1714564800, "2024-05-01T12:00:00.000Z"),
        (1714564800123, "2024-05-01T12:00:00.123Z"),
        ("1714564800", "2024-05-01T12:00:00.000Z"),
        (1714564800.5, "2024-05-01T12:00:00.500Z"),
    ],
)
def test_timestamps_become_utc_iso_with_milliseconds(shipped: Normalizer, sent: Any, utc: str) -> None:
    out = shipped.apply(track(timestamp=sent, sentAt=sent)).record
    assert out["timestamp"] == out["sentAt"] == utc


def test_trait_timestamps_named_in_config_are_normalized_after_renaming(shipped: Normalizer) -> None:
    record = {"type": "identify", "traits": {"createdAt": 1714564800, "signed_up_at": "2024-05-01T14:00:00+02:00", "age": 30}}
    out = shipped.apply(record).record["traits"]
    assert out == {"created_at": "2024-05-01T12:00:00.000Z", "signed_up_at": "2024-05-01T12:00:00.000Z", "age": 30}


def test_a_value_that_is_not_a_time_is_kept_and_reported(shipped: Normalizer) -> None:
    result = shipped.apply(track(sentAt="yesterday"))
    assert result.record["sentAt"] == "yesterday"
    assert [(n.kind, n.field) for n in result.notes] == [(BAD_TIMESTAMP, "sentAt")]


# --- the input is never changed ----------------------------------------------------------


def test_apply_never_mutates_its_input(shipped: Normalizer) -> None:
    record = {
        "type": "identify", "timestamp": 1714564800, "traits": {"firstName": "A", "createdAt": 1},
        "context": {"device": {"type": "iphone"}, "traits": {"lastName": "B"}, "campaign": {"source": "fb"}},
        "properties": {"revenue": 1, "currency": "EUR"},
    }
    before = copy.deepcopy(record)
    out = shipped.apply(record).record
    assert record == before
    assert out != before
    assert out["context"]["device"] is not record["context"]["device"]


# --- the file ------------------------------------------------------------------------------


def test_the_shipped_file_loads(shipped: Normalizer) -> None:
    assert shipped.config.currency is not None and shipped.config.currency.base == "USD"
    assert shipped.config.traits.case == "snake"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "normalize.yaml"
    path.write_text(text)
    return path


def test_errors_list_every_problem_with_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, """
currency:
  base: dollars
  rates: {EUR: -1}
  feilds: [revenue]
traits:
  case: kebab
labels:
  - fields: [context.device.type]
    values: {Mobile: [phone], Tablet: [Phone]}
  - fields: [context.device.type]
    matches: {Mobile: ["(unclosed"]}
""")
    with pytest.raises(NormalizationError) as caught:
        load_normalization(path)
    errors = caught.value.errors
    assert all(e.startswith(f"{path}: ") for e in errors)
    text = "\n".join(errors)
    assert "currency: unknown key 'feilds' (did you mean 'fields'?)" in text
    assert "traits.case:" in text and "'kebab'" in text
    assert "labels[0]:" in text and "'Phone' means both 'Mobile' and 'Tablet'" in text
    assert "labels[1].matches:" in text and "not a regular expression" in text


def test_currency_errors_say_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(NormalizationError) as caught:
        load_normalization(write(tmp_path, "currency: {base: dollars, rates: {EUR: -1}}\n"))
    assert "currency.base: expected an ISO 4217 code like 'USD', got 'dollars'" in str(caught.value)


def test_a_field_in_two_label_maps_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "labels:\n  - {fields: [a.b], values: {X: [x]}}\n  - {fields: [a.b], values: {Y: [y]}}\n")
    with pytest.raises(NormalizationError, match=r"a\.b is in labels\[0\] and labels\[1\]; merge them"):
        load_normalization(path)


def test_trait_timestamps_must_be_named_in_the_trait_case(tmp_path: Path) -> None:
    with pytest.raises(NormalizationError, match="write 'created_at' instead of 'createdAt'"):
        load_normalization(write(tmp_path, "traits: {case: snake, timestamps: [createdAt]}\n"))


def test_unknown_top_level_keys_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(NormalizationError, match="unknown key 'label' \\(did you mean 'labels'\\?\\)"):
        load_normalization(write(tmp_path, "label: []\n"))
    with pytest.raises(NormalizationError, match="no such file"):
        load_normalization(tmp_path / "absent.yaml")
    with pytest.raises(NormalizationError, match="invalid YAML at line 2"):
        load_normalization(write(tmp_path, "labels: [\n"))


def test_an_empty_file_normalizes_timestamps_and_trait_names_only(tmp_path: Path) -> None:
    n = load_normalization(write(tmp_path, ""))
    out = n.apply(track(timestamp=1714564800, context={"device": {"type": "iphone"}, "traits": {"firstName": "A"}})).record
    assert out["timestamp"] == "2024-05-01T12:00:00.000Z"
    assert out["context"] == {"device": {"type": "iphone"}, "traits": {"first_name": "A"}}


# --- idempotence ----------------------------------------------------------------------------

_label = st.sampled_from(["iphone", "Android", "ipad", "MAC", "fb", "facebook.com", "Google.co.uk", "mailchimp", "", " x "]) | st.text(max_size=12)
_time = (
    st.sampled_from(["2024-05-01T14:00:00+02:00", "2024-05-01", "yesterday", "1714564800"])
    | st.integers(min_value=-10**13, max_value=10**13)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
_amount = st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.sampled_from(["12.5", "n/a", "1e3"]) | st.booleans()
_currency = st.sampled_from(["usd", "EUR", "gbp ", "XYZ", None, 3]) | st.text(max_size=4)
_traits = st.dictionaries(st.text(max_size=10) | st.sampled_from(["firstName", "first_name", "First Name", "createdAt", "created_at"]), _time | st.text(max_size=5), max_size=5)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    properties = draw(st.dictionaries(st.sampled_from(["revenue", "price", "tax", "total", "sku"]), _amount, max_size=4))
    if draw(st.booleans()):
        properties["currency"] = draw(_currency)
    if draw(st.booleans()):
        properties["utm_source"] = draw(_label)
    context: dict[str, Any] = {"device": {"type": draw(_label)}, "campaign": {"source": draw(_label)}}
    if draw(st.booleans()):
        context["traits"] = draw(_traits)
    record = {"type": draw(st.sampled_from(["track", "identify"])), "properties": properties, "context": context, "traits": draw(_traits)}
    for name in draw(st.lists(st.sampled_from(["timestamp", "sentAt", "originalTimestamp", "receivedAt"]), unique=True)):
        record[name] = draw(_time)
    return record


_BY_CASE = {
    case: Normalizer(NormalizationConfig.model_validate(load_normalization(SHIPPED).config.model_dump() | {"traits": {"case": case}}))
    for case in ("snake", "camel")
}


@given(records(), st.sampled_from(sorted(_BY_CASE)))
@settings(max_examples=400, deadline=None)
def test_apply_is_idempotent_and_pure(record: dict[str, Any], case: str) -> None:
    n = _BY_CASE[case]
    before = _json(record)
    once = n.apply(record).record
    assert _json(record) == before
    assert _json(n.apply(once).record) == _json(once)


def _json(value: Any) -> bytes:
    """``value`` as comparable bytes (NaN, which equals nothing, becomes null)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
