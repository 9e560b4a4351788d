"""`watchdog series` and `watchdog events --format csv`: a series into a spreadsheet or pandas
without SQL — a header, exact decimals, the latest revision per date or every revision — and
the README's "At a glance" commands run as written."""
from __future__ import annotations

import csv
import io
import json
import re
import shlex
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from watchdog.cli import cli
from watchdog.market.series import SERIES, nominal_publication_text
from watchdog.model.events import Observation, new_observation
from watchdog.store import SqliteEventStore

REPO = Path(__file__).resolve().parent.parent
FIRST = datetime(2025, 11, 3, 14, 0, tzinfo=UTC)
LATER = datetime(2025, 11, 4, 19, 45, tzinfo=UTC)


def observation(series: str, day: str, value: str, unit: str = "%", source: str = "nyfed", **attributes: str):
    obs = Observation(series=series, date=day, value=value, unit=unit, source=source, attributes=attributes)
    return new_observation(obs, nominal_publication_text(series, date.fromisoformat(day)))


@pytest.fixture
def log(tmp_path) -> Path:
    """SOFR with percentiles and volume, a revision of 10-30 published the next afternoon,
    ON RRP take-up with its counterparty split, and an IORB step."""
    path = tmp_path / "events.db"
    store = SqliteEventStore(path, now=lambda: FIRST)
    store.append([observation("sofr", "2025-10-29", "3.96", p1="3.85", p25="3.9", p75="4", p99="4.1", volume="3061"),
                  observation("sofr", "2025-10-30", "4.04", p1="3.95", p25="3.99", p75="4.09", p99="4.27",
                              volume="3098.123456789"),
                  observation("sofr", "2025-10-31", "4.22"),
                  observation("onrrp", "2025-10-31", "51.8", unit="USD bn", mmf="40.1", gse="11.7"),
                  observation("iorb", "2025-10-30", "3.90", source="fomc")])
    store.close()
    store = SqliteEventStore(path, now=lambda: LATER)       # the NY Fed corrects 10-30
    [revised] = store.append([observation("sofr", "2025-10-30", "4.05", p1="3.95", p25="3.99", p75="4.09",
                                          p99="4.27", volume="3098.123456789")])
    assert revised.type == "observation-revised"
    store.close()
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def csv_rows(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def test_series_csv_has_a_header_and_exact_values_latest_revision_per_date(log):
    result = run("series", "--db", str(log), "sofr")
    assert result.exit_code == 0, result.output
    header, rows = csv_rows(result.stdout)
    assert header == ["series", "date", "value", "published_at", "recorded_at", "source"]
    assert [(r["date"], Decimal(r["value"])) for r in rows] == [
        ("2025-10-29", Decimal("3.96")), ("2025-10-30", Decimal("4.05")), ("2025-10-31", Decimal("4.22"))]
    corrected = rows[1]
    assert corrected["recorded_at"] == "2025-11-04T19:45:00.000000Z"
    assert corrected["published_at"] == "2025-11-04T19:45:00.000000Z"       # a revision: when revised
    assert {r["source"] for r in rows} == {"nyfed"}
    assert result.stderr == "series: 3 values of sofr\n"


def test_attributes_become_columns_in_catalogue_order_and_empty_where_absent(log):
    result = run("series", "--db", str(log), "sofr", "onrrp", "--attributes")
    header, rows = csv_rows(result.stdout)
    assert header == ["series", "date", "value", "published_at", "recorded_at", "source",
                      "p1", "p25", "p75", "p99", "volume", "gse", "mmf"]
    by_key = {(r["series"], r["date"]): r for r in rows}
    assert Decimal(by_key["sofr", "2025-10-30"]["volume"]) == Decimal("3098.123456789")
    assert by_key["sofr", "2025-10-31"]["p99"] == ""
    assert (by_key["onrrp", "2025-10-31"]["mmf"], by_key["onrrp", "2025-10-31"]["p1"]) == ("40.1", "")
    assert [r["series"] for r in rows] == ["sofr"] * 3 + ["onrrp"]      # in the order named


def test_every_revision_on_request_oldest_first(log):
    header, rows = csv_rows(run("series", "--db", str(log), "sofr", "--revisions").stdout)
    assert header[-1] == "revision"
    assert [(r["date"], r["value"], r["revision"]) for r in rows] == [
        ("2025-10-29", "3.96", "0"), ("2025-10-30", "4.04", "0"), ("2025-10-30", "4.05", "1"),
        ("2025-10-31", "4.22", "0")]


def test_since_and_until_bound_the_observation_dates_inclusively(log):
    _, rows = csv_rows(run("series", "--db", str(log), "sofr", "--since", "2025-10-30",
                           "--until", "2025-10-30").stdout)
    assert [(r["date"], r["value"]) for r in rows] == [("2025-10-30", "4.05")]


def test_json_lines_carry_the_same_fields_as_the_csv(log):
    result = run("series", "--db", str(log), "iorb", "sofr", "--format", "json", "--attributes",
                 "--until", "2025-10-29")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"series": "sofr", "date": "2025-10-29", "value": "3.96", "published_at": "2025-10-30T12:00:00.000000Z",
         "recorded_at": "2025-11-03T14:00:00.000000Z", "source": "nyfed", "p1": "3.85", "p25": "3.9",
         "p75": "4", "p99": "4.1", "volume": "3061"}]
    iorb = json.loads(run("series", "--db", str(log), "iorb", "--format", "json").stdout)
    assert (iorb["value"], iorb["source"]) == ("3.9", "fomc")


def test_an_unknown_series_is_one_line_listing_the_known_ones(log):
    result = run("series", "--db", str(log), "sofr", "sofrr")
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: unknown series 'sofrr'; known: sofr, tgcr, bgcr")
    assert all(name in line for name in SERIES)
    assert run("series", "--db", str(log)).exit_code == 2


def test_events_csv_is_one_row_per_event_with_the_canonical_payload(log):
    result = run("events", "--db", str(log), "--format", "csv")
    header, rows = csv_rows(result.stdout)
    assert header == ["seq", "type", "key", "published_at", "recorded_at", "payload"]
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    store = SqliteEventStore(log, readonly=True)
    stored = store.read(limit=10)
    store.close()
    for row, event in zip(rows, stored):
        assert (row["type"], row["key"], row["published_at"], row["recorded_at"]) == (
            event.type, event.key, event.published_at, event.recorded_at)
        assert json.loads(row["payload"]) == event.payload
        assert row["payload"] == json.dumps(event.payload, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False)
    revision = json.loads(rows[-1]["payload"], parse_float=Decimal)
    assert rows[-1]["type"] == "observation-revised" and Decimal(revision["value"]) == Decimal("4.05")
    only = csv_rows(run("events", "--db", str(log), "--format", "csv", "--type", "observation-revised").stdout)[1]
    assert [r["key"] for r in only] == ["obs/sofr/2025-10-30/rev/1"]


def readme_glance_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## At a glance: status, series and CSV", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.startswith("watchdog ")]


def test_the_readme_glance_commands_run_as_written_from_the_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)
    commands = readme_glance_commands()
    assert {shlex.split(c)[1] for c in commands} == {"status", "series", "events"}
    for command in commands:
        if shlex.split(command)[1] == "status" and "--json" not in command:
            continue            # the text forms: test_status.py runs them and compares with the README
        result = run(*shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
        assert result.stdout.strip(), command
        if "--json" in command:
            body = json.loads(result.stdout)
            assert body["now"] == "2025-11-03T17:00:00.000000Z" and len(body["firing"]) == 12
