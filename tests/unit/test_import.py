"""`segstream import` without services: mapping files, conversions, sources, checkpoints, the lateness exemption."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest

from stream.importer import checkpoint as checkpoints
from stream.importer.checkpoint import Checkpoint, CheckpointError
from stream.importer.convert import Converted, Converter, RowError, convert_value
from stream.importer.mapping import Mapping, MappingError, load_mapping
from stream.importer.run import Summary
from stream.importer.sources import BadRow, SourceError, count_rows, read_rows
from stream.ingest.events import normalise
from stream.worker.processor import IMPORT_MARKER, Message, exempt_from_lateness, parse

ROOT = Path(__file__).resolve().parents[2]
ORDERS = {
    "kind": "events",
    "user_id": "customer",
    "event": "Order Completed",
    "timestamp": {"column": "date", "format": "%Y%m%d"},
    "revenue": "amount",
    "properties": {"quantity": {"column": "qty", "type": "int"}},
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def record(converted: Converted | RowError) -> dict:
    assert isinstance(converted, Converted), converted
    return orjson.loads(converted.value)


@pytest.mark.parametrize("name", ["crm.yaml", "orders.yaml"])
def test_shipped_examples_are_valid(name: str) -> None:
    assert load_mapping(ROOT / "examples" / "import" / name).kind in ("profiles", "events")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: profiles\nuser_id: id\ntrait: {a: b}\n", "trait"),
        ("kind: profiles\nuser_id: id\ntraits: {age: {column: Age, type: integer}}\n", "traits.age"),
        ("kind: events\nuser_id: id\ntimestamp: {column: t}\n", "an events mapping needs event"),
        ("kind: events\nuser_id: id\nevent: X\n", "an events mapping needs timestamp"),
        ("kind: profiles\nuser_id: id\ntimestamp: {column: t, format: yyyy}\n", "timestamp.format"),
        ("kind: profiles\nuser_id: id\ntraits: {a: {column: A, format: '%Y'}}\n", "format applies to date and datetime"),
        ("kind: profiles\nuser_id: id\ncsv: {header: false}\n", "needs columns"),
        ("kind: profiles\nuser_id: id\nproperties: {a: A}\n", "belong to kind: events"),
    ],
)
def test_mapping_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(write(tmp_path, "m.yaml", text))
    assert expected in str(caught.value) and "m.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "kind", "fmt", "expected"),
    [
        ("42", "int", None, 42),
        ("42.0", "int", None, 42),
        (7.0, "int", None, 7),
        (" 3.5 ", "float", None, 3.5),
        ("Yes", "bool", None, True),
        ("0", "bool", None, False),
        (12, "string", None, "12"),
        ("2024-05-01T14:00:00+02:00", "datetime", None, "2024-05-01T12:00:00.000Z"),
        ("01/05/2024", "date", "%d/%m/%Y", "2024-05-01"),
        ("1714564800", "datetime", "epoch_s", "2024-05-01T12:00:00.000Z"),
    ],
)
def test_convert_value(raw: object, kind: str, fmt: str | None, expected: object) -> None:
    assert convert_value(raw, kind, fmt) == expected


@pytest.mark.parametrize(("raw", "kind"), [("4.5", "int"), ("x", "float"), ("nan", "float"), ("maybe", "bool"), (True, "int"), ("soon", "date")])
def test_convert_value_refuses(raw: object, kind: str) -> None:
    with pytest.raises(ValueError):
        convert_value(raw, kind)


def test_profiles_row_becomes_an_identify_marked_as_imported() -> None:
    mapping = Mapping.model_validate(
        {"kind": "profiles", "user_id": "id", "email": "mail", "traits": {"age": {"column": "Age", "type": "int"}, "plan": "Plan", "src": {"value": "crm"}}}
    )
    out = Converter(mapping, "crm", imported_at=1_714_564_800_000).convert(1, {"id": 17, "mail": "a@b.co", "Age": "31", "Plan": ""})
    value = record(out)
    assert out.key == b"17"  # type: ignore[union-attr]
    assert value["type"] == "identify" and value["userId"] == "17"
    assert value["traits"] == {"age": 31, "src": "crm", "email": "a@b.co"}  # the empty Plan is left out
    assert value["timestamp"] == "2024-05-01T12:00:00.000Z" and value["ts"] == 1_714_564_800_000
    assert "receivedAt" not in value and value[IMPORT_MARKER] == {"name": "crm", "at": "2024-05-01T12:00:00.000Z", "row": 1}


def test_events_row_keeps_its_original_time_and_revenue() -> None:
    converter = Converter(Mapping.model_validate(ORDERS), "orders", imported_at=0)
    value = record(converter.convert(3, {"customer": "00002", "date": "19970112", "qty": "5", "amount": "77.00"}))
    assert (value["userId"], value["event"], value["timestamp"]) == ("00002", "Order Completed", "1997-01-12T00:00:00.000Z")
    assert value["properties"] == {"quantity": 5, "revenue": 77.0}


def test_message_ids_are_deterministic() -> None:
    row = {"customer": "1", "date": "19970101", "qty": "1", "amount": "1"}
    one = Converter(Mapping.model_validate(ORDERS), "orders", imported_at=0)
    two = Converter(Mapping.model_validate(ORDERS), "orders", imported_at=99)
    assert one.convert(1, row).message_id == two.convert(1, row).message_id  # type: ignore[union-attr]
    assert one.convert(1, row).message_id != one.convert(2, row).message_id  # type: ignore[union-attr]  # two equal orders stay two
    keyed = Converter(Mapping.model_validate({**ORDERS, "id": ["customer", "date"]}), "orders", imported_at=0)
    assert keyed.convert(1, row).message_id == keyed.convert(9, row).message_id  # type: ignore[union-attr]
    assert keyed.convert(1, row).message_id.startswith("import:orders:")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ({"customer": "", "date": "19970101", "qty": "1", "amount": "1"}, "missing_user_id", "userId"),
        ({"customer": "1", "date": "", "qty": "1", "amount": "1"}, "missing_timestamp", "timestamp"),
        ({"customer": "1", "date": "1997-01-01", "qty": "1", "amount": "1"}, "bad_timestamp", "timestamp"),
        ({"customer": "1", "date": "19970101", "qty": "one", "amount": "1"}, "bad_value", "properties.quantity"),
        ({"customer": "1", "date": "19970101", "qty": "1", "amount": "lots"}, "bad_value", "properties.revenue"),
        ({"customer": "1", "date": "00010101", "qty": "1", "amount": "1"}, "invalid_event", "timestamp"),
    ],
)
def test_rejected_rows_say_why(row: dict, reason: str, field: str) -> None:
    out = Converter(Mapping.model_validate(ORDERS), "orders", imported_at=0).convert(5, row)
    assert isinstance(out, RowError) and (out.row, out.reason, out.field) == (5, reason, field), out
    assert orjson.loads(out.to_bytes())["reason"] == reason


def test_csv_with_whitespace_and_jsonl_and_parquet(tmp_path: Path) -> None:
    mapping = Mapping.model_validate({**ORDERS, "csv": {"delimiter": "whitespace"}})
    text = " customer  date qty  amount\r\n 00001 19970101  1   11.77\r\n 00002 19970112  5   77.00\r\n"
    path = write(tmp_path, "log.txt", text)
    assert list(read_rows(path, mapping)) == [
        {"customer": "00001", "date": "19970101", "qty": "1", "amount": "11.77"},
        {"customer": "00002", "date": "19970112", "qty": "5", "amount": "77.00"},
    ]
    assert count_rows(path, mapping) == 2
    lines = write(tmp_path, "rows.jsonl", '{"customer": 1, "date": "19970101"}\n[1]\n{bad\n')
    rows = list(read_rows(lines, Mapping.model_validate(ORDERS)))
    assert rows[0] == {"customer": 1, "date": "19970101"} and all(isinstance(r, BadRow) for r in rows[1:])
    parquet = tmp_path / "orders.parquet"
    duckdb.sql(f"COPY (SELECT 'c' || i AS customer, DATE '1997-01-01' + CAST(i AS INTEGER) AS date, i AS qty, i * 1.5 AS amount FROM range(3) t(i)) TO '{parquet}' (FORMAT parquet)")
    parsed = list(read_rows(parquet, Mapping.model_validate(ORDERS)))
    assert count_rows(parquet, Mapping.model_validate(ORDERS)) == 3 and parsed[2]["customer"] == "c2"
    converted = record(Converter(Mapping.model_validate(ORDERS), "o", 0).convert(3, parsed[2]))
    assert converted["timestamp"] == "1997-01-03T00:00:00.000Z" and converted["properties"] == {"quantity": 2, "revenue": 3.0}


def test_a_missing_column_stops_before_importing(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", "customer,date,qty\n1,19970101,1\n")
    with pytest.raises(SourceError, match="no column 'amount'"):
        list(read_rows(path, Mapping.model_validate(ORDERS)))


def test_only_imported_records_and_identity_hops_skip_the_lateness_limit() -> None:
    payload = {"userId": "u", "event": "Order Completed", "timestamp": "1997-01-01T00:00:00Z", IMPORT_MARKER: {"name": "x", "row": 1}}
    sdk = normalise(payload, "track", received_at=1_714_564_800_000, size=100).records[0]
    assert orjson.loads(sdk.value)[IMPORT_MARKER]  # the collector keeps unknown fields, but stamps receivedAt
    _, item = parse(Message(0, 0, sdk.key, sdk.value))
    assert not exempt_from_lateness(item.record)
    imported = Converter(Mapping.model_validate(ORDERS), "o", 0).convert(1, {"customer": "u", "date": "19970101", "qty": "1", "amount": "1"})
    _, item = parse(Message(0, 1, imported.key, imported.value))  # type: ignore[union-attr]
    assert exempt_from_lateness(item.record)
    assert exempt_from_lateness({"type": "claim", "claimant": "u", "ts": 0})
    assert not exempt_from_lateness({"type": "track", "event": "X", "ts": 0, IMPORT_MARKER: "yes"})


def test_checkpoint_round_trip_and_mismatch(tmp_path: Path) -> None:
    data, mapping = write(tmp_path, "a.csv", "x\n1\n"), write(tmp_path, "m.yaml", "kind: profiles\nuser_id: x\n")
    path = checkpoints.checkpoint_path(data)
    assert path.name == "a.csv.import.json" and checkpoints.rejected_path(data).name == "a.csv.rejected.jsonl"
    expected = checkpoints.fingerprint(data, mapping)
    assert checkpoints.load(path, expected) is None
    state = Checkpoint(expected, imported_at=5, rows=10, accepted=9, rejected={"bad_value": 1}, offsets={"0": 3})
    checkpoints.save(path, state)
    assert checkpoints.load(path, expected) == state
    data.write_text("x\n1\n2\n")
    with pytest.raises(CheckpointError, match="--restart"):
        checkpoints.load(path, checkpoints.fingerprint(data, mapping))


def test_summary_counts_per_reason() -> None:
    summary = Summary(Path("a.csv"), rows=10, accepted=7, rejected={"bad_value": 2, "missing_user_id": 1}, done=True, this_run=10, seconds=2.0, rejected_file=Path("a.csv.rejected.jsonl"))
    lines = summary.lines()
    assert lines[0] == "10 rows: 7 accepted, 3 rejected (done)"
    assert "(5 rows/s)" in lines[1] and lines[2:4] == ["  rejected bad_value: 2", "  rejected missing_user_id: 1"]
    assert lines[-1].endswith("a.csv.rejected.jsonl")
