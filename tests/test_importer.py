"""History importer: real files in data/history in, observation events out."""
from __future__ import annotations

import hashlib
import itertools
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from watchdog.errors import ImportFailed
from watchdog.events import OBSERVATION_RECORDED, canonical_json
from watchdog.importer import (
    COMPANION_FILES, HISTORY_FILES, KINDS, infer_kind, iter_file_events, iter_history_events,
)
from watchdog.numbers import norm
from watchdog.series import SERIES

HISTORY = Path(__file__).resolve().parents[1] / "data" / "history"
SOFR_JSON = "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json"
SOFR_VOLUME_JSON = "nyfed/sofr_volume_2018-04-03_2026-09-03.json"

# SHA-256 of the shipped copies (data/history/PROVENANCE.md): the importer's tests are about
# these exact bytes.
SHA256 = {
    "rates/SOFR.csv": "242284f0e090ca19bc9e45143534fe7948ab90fdafd3615d1d407b8ae9729432",
    "rates/EFFR.csv": "1ac4e2ecc15e99e06c20cc0ad9a2d5b9aa300223c5f7111e61b9ec4cbbb48788",
    "rates/IORB.csv": "c17d4839307d9fb599036a2573f0f64e9e07e5fe703cb6a0c9ef6c39a01fa574",
    "rates/DFEDTARU.csv": "7f87298b21ecdcc018c92a50bca827ec6e3f34be62897f856b9579dbc05b822a",
    "rates/DFEDTARL.csv": "569678c35a159a1e414dd66f8c3550c9a39d57349ca314e6e9f722620a3b5356",
    "rates/iorb_ioer_changes.csv": "793c5a8234053b1bc2dc7538c5e6cdac81799418744d4eee83f8cc07cb7d536b",
    "rates/on_rrp_rate_changes.csv": "fa35581f43d90ccf1318d78d3b7583bb5541a6fa0f7e52dbb5cf503b49c9686a",
    "rates/srf_min_bid_rate_changes.csv": "d4ded3b02729838430e50ca4034e21e93e8338958e0f808a5dcd87ccf9455606",
    SOFR_JSON: "3a5e2244641595a89daa35a0643e0d1d5328e9149496d3a172cad784314519e1",
    SOFR_VOLUME_JSON: "242476de8f3b9226c5cefa537e1efe9250d8abc60b2cda95682b349ef34c7617",
    "nyfed/tgcr_rate_percentiles_2018-04-03_2026-09-04.json":
        "cdaf52e9638cc977f31e3f010bbbe0a52aad9018f285904c7e74c83b2d0bb59b",
    "nyfed/bgcr_rate_percentiles_2018-04-03_2026-09-04.json":
        "b1cd7969ac8f1bd245feccb4ae544c44d28c1b73faf98710a8b0d29cc70c08b2",
}

EXPECTED_COUNTS = {
    SOFR_JSON: 2104,
    "nyfed/tgcr_rate_percentiles_2018-04-03_2026-09-04.json": 2105,
    "nyfed/bgcr_rate_percentiles_2018-04-03_2026-09-04.json": 2105,
    "rates/iorb_ioer_changes.csv": 31,
    "rates/on_rrp_rate_changes.csv": 32,
    "rates/srf_min_bid_rate_changes.csv": 19,
    "rates/SOFR.csv": 2079,       # 2,173 rows, 94 empty (holidays)
    "rates/EFFR.csv": 6508,
    "rates/IORB.csv": 1791,
    "rates/DFEDTARU.csv": 32,     # change points of 6,381 daily rows
    "rates/DFEDTARL.csv": 32,
}


@pytest.fixture(scope="module")
def history():
    return list(iter_history_events(HISTORY))


@pytest.fixture(scope="module")
def by_source(history):
    """(source, series, date) -> payload, published_at."""
    table = {}
    for event in history:
        p = event.payload
        key = (p["source"], p["series"], p["date"])
        assert key not in table, f"duplicate {key}"
        table[key] = (p, event.published_at)
    return table


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- the shipped files ------------------------------------------------------------------

def test_shipped_history_files_are_the_unchanged_copies_listed_in_provenance():
    shipped = {str(p.relative_to(HISTORY)) for p in HISTORY.rglob("*") if p.is_file()}
    assert shipped == set(SHA256) | {"PROVENANCE.md"}
    for rel, digest in SHA256.items():
        assert hashlib.sha256((HISTORY / rel).read_bytes()).hexdigest() == digest, rel
    provenance = (HISTORY / "PROVENANCE.md").read_text(encoding="utf-8")
    for rel in SHA256:
        assert rel in provenance


def test_every_shipped_file_is_registered_and_counts_per_file_are_stable(history):
    assert set(HISTORY_FILES) | set(COMPANION_FILES) == set(SHA256)
    counts = {}
    for event in history:
        rel = event.payload["provenance"]["file"]
        counts[rel] = counts.get(rel, 0) + 1
    assert counts == EXPECTED_COUNTS
    assert all(event.type == OBSERVATION_RECORDED for event in history)


# ---- spot values --------------------------------------------------------------------------

def test_sofr_on_the_2019_repo_spike_is_5_25_published_next_morning_8am_new_york(by_source):
    for source in ("nyfed", "fred"):
        payload, published_at = by_source[(source, "sofr", "2019-09-17")]
        assert payload["value"] == "5.25"
        assert payload["unit"] == "%"
        assert published_at == "2019-09-18T12:00:00.000000Z"


def test_nyfed_sofr_carries_percentiles_and_volume_joined_by_date(by_source):
    payload, _ = by_source[("nyfed", "sofr", "2019-09-17")]
    assert payload["attributes"] == {"p1": "2.25", "p25": "5", "p75": "5.85", "p99": "9",
                                     "volume": "1177"}
    prov = payload["provenance"]
    assert prov["file"] == SOFR_JSON and prov["volume_file"] == SOFR_VOLUME_JSON
    assert (prov["raw_value"], prov["raw_p25"], prov["raw_p99"]) == ("5.25", "5.00", "9.00")
    tgcr, _ = by_source[("nyfed", "tgcr", "2019-09-17")]
    assert tgcr["value"] == "5.25" and tgcr["attributes"]["p99"] == "5.85"
    assert "volume" not in tgcr["attributes"]


def test_na_percentiles_are_left_out_but_the_rate_is_kept(by_source):
    payload, _ = by_source[("nyfed", "sofr", "2019-05-31")]
    assert payload["value"] == "2.49"
    assert payload["attributes"] == {"volume": "1136"}
    assert payload["provenance"]["footnote_id"] == "2"


def test_negative_first_percentile_is_kept_exactly(by_source):
    negatives = [p for (src, series, _), (p, _) in by_source.items()
                 if src == "nyfed" and series == "sofr" and p["attributes"].get("p1", "0").startswith("-")]
    assert len(negatives) == 137  # PROVENANCE: SOFR 137 days in 2020-2022


def test_effr_written_as_float_text_is_parsed_exactly(by_source):
    payload, published_at = by_source[("fred", "effr", "2019-09-17")]
    assert payload["value"] == "2.3"
    assert payload["provenance"]["raw_value"] == "2.3"
    assert published_at == "2019-09-18T13:00:00.000000Z"  # T+1 Fed business day 09:00 EDT


def test_iorb_change_is_published_at_the_fomc_announcement_instant(by_source):
    payload, published_at = by_source[("fomc", "iorb", "2019-09-19")]
    assert payload["value"] == "1.8"
    assert published_at == "2019-09-18T18:00:00.000000Z"  # 14:00 EDT the day before
    assert payload["provenance"]["field"] == "IOER"
    assert payload["provenance"]["implementation_note_url"].endswith("monetary20190918a1.htm")
    # Unscheduled moves keep their own time and the zone's offset on that day.
    assert by_source[("fomc", "iorb", "2020-03-04")][1] == "2020-03-03T15:00:00.000000Z"  # 10:00 EST
    assert by_source[("fomc", "iorb", "2020-03-16")][1] == "2020-03-15T21:00:00.000000Z"  # 17:00 EDT
    assert by_source[("fomc", "iorb", "2021-07-29")][0]["provenance"]["field"] == "IORB"


def test_iorb_in_force_from_2019_08_01_is_2_1(by_source):
    assert by_source[("fomc", "iorb", "2019-08-01")][0]["value"] == "2.1"


def test_fred_iorb_fills_daily_at_midnight_new_york(by_source):
    payload, published_at = by_source[("fred", "iorb", "2023-03-13")]
    assert payload["value"] == "4.65"
    assert published_at == "2023-03-13T04:00:00.000000Z"


def test_mixed_number_formats_normalise_to_one_canonical_text(by_source):
    onrrp = {d: p["value"] for (s, series, d), (p, _) in by_source.items() if series == "onrrp_rate"}
    srf = {d: p["value"] for (s, series, d), (p, _) in by_source.items() if series == "srf_rate"}
    assert onrrp["2017-06-15"] == "1"       # "1.00"
    assert onrrp["2022-03-17"] == "0.3"     # "0.3"
    assert onrrp["2025-09-18"] == "4"       # "4"
    assert onrrp["2020-03-16"] == "0"       # "0.00"
    assert srf["2022-05-05"] == "1"         # "1.0"
    assert srf["2022-11-03"] == "4"         # "4"
    assert srf["2025-10-30"] == "4"         # "4.0"
    assert by_source[("fomc", "srf_rate", "2025-10-30")][1] == "2025-10-29T18:00:00.000000Z"


def test_no_float_ever_every_number_is_canonical_decimal_text(history, tmp_path):
    def no_float(obj):
        assert not isinstance(obj, float)
        if isinstance(obj, dict):
            for value in obj.values():
                no_float(value)

    for event in history:
        p = event.payload
        no_float(p)
        assert p["value"] == norm(Decimal(p["value"]))
        for value in p["attributes"].values():
            assert value == norm(Decimal(value))
    # A value a float would round stays exactly as written.
    path = _write(tmp_path, "EFFR.csv", "Date,Value\n2020-01-02,0.1\n"
                  "2020-01-03,0.1000000000000000055511\n2020-01-06,2.30\n")
    assert [e.payload["value"] for e in iter_file_events(path)] == [
        "0.1", "0.1000000000000000055511", "2.3"]
    # However long, a number is kept exactly (norm never rounds).
    path = _write(tmp_path, "EFFR.csv", "Date,Value\n2020-01-02,0.1000000000000000055511151231257827\n")
    assert [e.payload["value"] for e in iter_file_events(path)] == ["0.1000000000000000055511151231257827"]


def test_nyfed_json_numbers_are_read_as_text_not_floats(tmp_path):
    path = _write(tmp_path, "sofr_rate_percentiles_x.json",
                  '{ "refRates": [ { "effectiveDate": "2020-01-03", "type": "SOFR" ,"percentRate": '
                  '0.10000000000000000555 ,"percentPercentile1": 1.50 ,"percentPercentile25": "NA" ,'
                  '"percentPercentile75": 2 ,"percentPercentile99": 2.00 ,"revisionIndicator": "" } ] }')
    (event,) = iter_file_events(path)
    assert event.payload["value"] == "0.10000000000000000555"
    assert event.payload["attributes"] == {"p1": "1.5", "p75": "2", "p99": "2"}
    assert event.payload["provenance"]["file"] == path.name  # not a known file: bare name
    assert "volume" not in event.payload["attributes"]       # no companion volume file


# ---- step series ----------------------------------------------------------------------------

def test_fftarget_emits_only_change_points(history):
    for series in ("fftarget_upper", "fftarget_lower"):
        events = [e.payload for e in history if e.payload["series"] == series]
        assert len(events) == 32
        values = [e["value"] for e in events]
        assert all(a != b for a, b in zip(values, values[1:]))
        dates = [e["date"] for e in events]
        assert dates[0] == "2008-12-16" and dates == sorted(dates)
    upper = {e.payload["date"]: e.payload["value"] for e in history
             if e.payload["series"] == "fftarget_upper"}
    assert upper["2019-09-19"] == "2" and "2019-09-18" not in upper
    assert upper["2019-08-01"] == "2.25"


def test_step_change_points_ignore_missing_days_and_equal_spellings(tmp_path):
    path = _write(tmp_path, "DFEDTARU.csv", "Date,Value\n2019-07-30,2.5\n2019-07-31,2.50\n"
                  "2019-08-01,2.25\n2019-08-02,\n2019-08-03,2.25\n2019-08-04,.\n2019-08-05,2.0\n")
    events = list(iter_file_events(path))
    assert [(e.payload["date"], e.payload["value"]) for e in events] == [
        ("2019-07-30", "2.5"), ("2019-08-01", "2.25"), ("2019-08-05", "2")]
    assert events[1].published_at == "2019-08-01T04:00:00.000000Z"


# ---- calendars, order, determinism -----------------------------------------------------------

def test_good_friday_2023_has_effr_but_no_sofr(by_source):
    assert not any(series == "sofr" and d == "2023-04-07" for (_, series, d) in by_source)
    assert by_source[("fred", "effr", "2023-04-07")][0]["value"] == "4.83"
    # SOFR for the Thursday before is published on Monday (no SOFR on Good Friday).
    assert by_source[("nyfed", "sofr", "2023-04-06")][1] == "2023-04-10T12:00:00.000000Z"


def test_history_is_deterministic(history):
    def fingerprint(events):
        return [(e.key, canonical_json(e.payload), e.published_at) for e in events]

    assert fingerprint(iter_history_events(HISTORY)) == fingerprint(history)


def test_primary_sources_come_first_and_each_file_is_in_date_order(history):
    files = [rel for rel, _ in itertools.groupby(e.payload["provenance"]["file"] for e in history)]
    assert files == list(HISTORY_FILES)  # each file is one contiguous block, in registry order
    for _, block in itertools.groupby(history, key=lambda e: e.payload["provenance"]["file"]):
        dates = [e.payload["date"] for e in block]
        assert dates == sorted(set(dates))
    first_source = {}
    sources = {}
    for event in history:
        first_source.setdefault(event.key, event.payload["source"])
        sources.setdefault(event.key, set()).add(event.payload["source"])
    for key, source in first_source.items():
        primary = SERIES[key.split("/")[1]].primary_source
        if primary in sources[key]:
            assert source == primary, key


def test_nyfed_sofr_agrees_with_fred_sofr_on_every_common_date(by_source):
    fred = {d: p["value"] for (s, series, d), (p, _) in by_source.items() if (s, series) == ("fred", "sofr")}
    nyfed = {d: p["value"] for (s, series, d), (p, _) in by_source.items() if (s, series) == ("nyfed", "sofr")}
    common = fred.keys() & nyfed.keys()
    assert len(common) == 2079 and set(fred) <= set(nyfed)
    assert [d for d in sorted(common) if fred[d] != nyfed[d]] == []


def test_history_events_are_produced_lazily():
    first = list(itertools.islice(iter_history_events(HISTORY), 3))
    assert [e.key for e in first] == ["obs/sofr/2018-04-03", "obs/sofr/2018-04-04", "obs/sofr/2018-04-05"]


def test_iorb_fomc_table_and_fred_iorb_agree_on_effective_dates(by_source):
    for (source, series, day), (payload, _) in by_source.items():
        if (source, series) == ("fomc", "iorb") and ("fred", "iorb", day) in by_source:
            assert by_source[("fred", "iorb", day)][0]["value"] == payload["value"], day


# ---- malformed input ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, line, reason", [
    ("SOFR.csv", "observation_date,SOFR\n2019-09-16,2.43\n2019-09-17,abc\n", 3, "not a decimal"),
    ("SOFR.csv", "observation_date,SOFR\n2019-09-16,2.43\n\n2019-13-17,5.25\n", 4, "not a valid date"),
    ("SOFR.csv", "observation_date,SOFR\n2019-09-16,2.43,1\n", 2, "expected 2 columns"),
    ("SOFR.csv", "observation_date,SOFR\n2019-09-17,2.43\n2019-09-16,2.43\n", 3, "not after"),
    ("SOFR.csv", "observation_date,SOFR\n2019-09-17,1e3\n", 2, "not a decimal"),
    ("SOFR.csv", "observation_date,EFFR\n2019-09-17,2.43\n", 1, "unexpected header"),
    ("EFFR.csv", "Date,Value\n2019-09-17,nan%\n", 2, "not a decimal"),
    ("on_rrp_rate_changes.csv",
     "announcement_date,announcement_time,timezone,effective_date,rate_percent,source_url,page\n"
     "2019-09-18,14:00,Mars/Olympus,2019-09-19,1.70,https://example.org/a,a.gz\n", 2, "time zone"),
    ("srf_min_bid_rate_changes.csv",
     "announcement_date,announcement_time,timezone,effective_date,rate_percent,source_url,page\n"
     "2019-09-18,2pm,America/New_York,2019-09-19,1.70,https://example.org/a,a.gz\n", 2, "HH:MM"),
    ("iorb_ioer_changes.csv",
     "announcement_date,announcement_time,timezone,effective_date,field,rate_percent,"
     "implementation_note_url,statement_url\n"
     "2019-09-18,14:00,America/New_York,2019-09-19,IOXR,1.80,https://e.org/a,https://e.org/b\n",
     2, "field"),
    ("iorb_ioer_changes.csv", "announcement_date,effective_date,rate_percent\n", 1, "lacks column"),
    ("tgcr_rate_percentiles_x.json",
     '{\n "refRates": [\n  {"effectiveDate": "2019-09-17", "type": "TGCR", "percentRate": 5.25},\n'
     '  {"effectiveDate": "2019-09-16", "type": "TGCR", "percentRate": "x"}\n ]\n}\n', 4,
     "percentRate"),
    ("bgcr_rate_percentiles_x.json", '{"refRates": [{"effectiveDate": "2019-09-17", "type": "SOFR",'
     ' "percentRate": 5.25}]}', 1, "type"),
    ("bgcr_rate_percentiles_x.json", '{"refRates": [\n{"effectiveDate": "2019-09-17",,}]}', 2,
     "invalid JSON"),
])
def test_malformed_row_raises_import_failed_naming_file_and_line(tmp_path, name, text, line, reason):
    path = _write(tmp_path, name, text)
    with pytest.raises(ImportFailed) as caught:
        list(iter_file_events(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert reason in message


def test_missing_values_are_skipped_not_errors(tmp_path):
    path = _write(tmp_path, "SOFR.csv", "observation_date,SOFR\n2019-09-16,2.43\n2019-09-17,\n"
                  "2019-09-18,.\n2019-09-19,1.95\n")
    assert [e.payload["date"] for e in iter_file_events(path)] == ["2019-09-16", "2019-09-19"]


def test_kind_is_inferred_from_the_file_name_or_given(tmp_path):
    assert infer_kind(Path("rates/SOFR.csv")) == "fred-sofr"
    assert infer_kind(Path(SOFR_JSON)) == "nyfed-sofr"
    assert infer_kind(Path("x/DFEDTARL.csv")) == "fred-fftarget-lower"
    assert set(KINDS) >= {parser.kind for parser in HISTORY_FILES.values()}
    path = _write(tmp_path, "my_export.csv", "observation_date,IORB\n2021-07-29,0.15\n")
    with pytest.raises(ImportFailed, match="unknown history file name"):
        iter_file_events(path)
    (event,) = iter_file_events(path, kind="fred-iorb")
    assert (event.payload["series"], event.payload["value"]) == ("iorb", "0.15")
    with pytest.raises(ImportFailed, match="unknown kind"):
        iter_file_events(path, kind="nope")


def test_volume_file_alone_is_refused_with_a_pointer_to_the_rate_file():
    with pytest.raises(ImportFailed, match="sofr_rate_percentiles"):
        list(iter_file_events(HISTORY / SOFR_VOLUME_JSON))


def test_history_dir_with_no_known_file_is_an_error(tmp_path):
    with pytest.raises(ImportFailed, match="none of the known history files"):
        list(iter_history_events(tmp_path))


def test_history_dir_imports_the_files_present_only(tmp_path):
    (tmp_path / "rates").mkdir()
    (tmp_path / "nyfed").mkdir()
    shutil.copy(HISTORY / "rates/iorb_ioer_changes.csv", tmp_path / "rates")
    shutil.copy(HISTORY / SOFR_JSON, tmp_path / "nyfed")  # without its volume companion
    events = list(iter_history_events(tmp_path))
    assert len(events) == 2104 + 31
    assert "volume" not in events[0].payload["attributes"]
    assert events[0].payload["provenance"]["file"] == SOFR_JSON
