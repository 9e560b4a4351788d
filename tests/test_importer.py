"""History importer: real files in data/history in, observation and speech events out."""
from __future__ import annotations

import collections
import csv
import hashlib
import itertools
import json
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from watchdog.market.calendar import next_business_day
from watchdog.model.errors import ImportFailed
from watchdog.model.events import OBSERVATION_RECORDED, SPEECH_RECORDED, canonical_json
from watchdog.sources.history import (
    COMPANION_FILES, HISTORY_FILES, KINDS, REFERENCE_FILES, import_paths, infer_kind,
    iter_file_events, iter_history_events,
)
from watchdog.model.numbers import norm
from watchdog.market.series import SERIES
from watchdog.store import MemoryEventStore

HISTORY = Path(__file__).resolve().parents[1] / "data" / "history"
SOFR_JSON = "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json"
SOFR_VOLUME_JSON = "nyfed/sofr_volume_2018-04-03_2026-09-03.json"
DTS = "treasury/DTS_OpCashBal_20210624_20260623.csv"
GDP_FIRST = "fred/GDP_observations_output_type4_initial_release.json"
OFR_FSI = "ofr/fsi_2000-01-03_2025-09-11.csv"
QT_CAPS = "balance_sheet/qt_runoff_caps.csv"

# SHA-256 of the shipped copies (data/history/PROVENANCE.md): the importer's tests are about
# these exact bytes.
SHA256 = {
    "rates/SOFR.csv": "242284f0e090ca19bc9e45143534fe7948ab90fdafd3615d1d407b8ae9729432",
    "rates/EFFR.csv": "1ac4e2ecc15e99e06c20cc0ad9a2d5b9aa300223c5f7111e61b9ec4cbbb48788",
    "rates/IORB.csv": "c17d4839307d9fb599036a2573f0f64e9e07e5fe703cb6a0c9ef6c39a01fa574",
    "rates/nyfed_reference_rates_2026-01-02_2026-08-03.csv":
        "8151157afcab67a5d67a90b6a1b8c365f4faf0252e7db46c0ce5197eaacdec6a",
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
    "facilities/RRPONTSYD.csv": "4c80f955c4ed6523b4d21ae22d03710b82eb1fa320f8328caaeb1f8015b39151",
    "balance_sheet/WRESBAL.csv": "47689b74942b22f16430fc74dc3d2469f8377f9851bbe2c8781f792ae94cec7e",
    "balance_sheet/WALCL.csv": "e3b8a4195046380406c310980e8c29c3f9feb99304bc3b42f898b7432d488c71",
    QT_CAPS: "ff413b061516e5c3a8eb25add442bd695a36cd4647f76afc8856512859430d8d",
    OFR_FSI: "27eca6220bf68ed3527680193f3975b5f621406983e08e6d671eaa61a6198624",
    "treasury/WTREGEN.csv": "7f51483f09750ab86a7266dc9458b6f76673f8491fc04b28b955ed0e6dce2005",
    DTS: "b02de38f343a9f9e91ffa2f02d84c4a526f91f923e6b8c609af555b64946c914",
    "macro/M2SL.csv": "452b9747d2a457bf717952a79cd41871064b1e44536116531f5b031332fcac08",
    "macro/GDP.csv": "4cf662f6d09f7fe90b984cdc3f37390eb5cce8eec069d5f1e31cb102ab3b45c4",
    GDP_FIRST: "45b74cb4faa89148304d74a62e4ed36051444950e5f50effcba9f7de783b9336",
    "speeches/bog_speech_infos.json": "f154d0a64086d51ea43d3c720c1844e46b21f08cbad6c9a9332da8541a785179",
    "speeches/bog_speeches_2019.json": "164a7b37ec584c87f3f846ce3aa6bf9609d9f63fdecf060b1f82ab909a5d9970",
    "speeches/bog_speeches_2020.json": "9123f79f6ad2adcb1216fa1657798e6329a04a9e02c4f9969610f1a5685023b7",
    "speeches/bog_speeches_2021.json": "821629b41c9d9b47d393762ef3090873ef43e1557aacbfe47807df4d4ef13d7a",
    "speeches/bog_speeches_2022.json": "1f97de153709ac37b45e970fdf544551aa02ed665a9999885cf3efafb7f3f401",
    "speeches/bog_speeches_2023.json": "2bd762a1bc0c180656743737b66fce32d1016570f83eb86b1942f9a31db1770e",
    "speeches/bog_speeches_2024.json": "de0d23fb05cc3f1e7a2f647b1332d6ca0564ab263f14b498026609e502b53525",
    "speeches/newyork_speeches_2019.json": "44e304e899ab5bc4f5302d2bf24f60e40395967934b63ce70a5892528fe46657",
    "speeches/newyork_speeches_2020.json": "f52aa0c9fa87de23f12d10552ba37303293ef774869377e5d816d11cec83fa97",
    "speeches/newyork_speeches_2021.json": "f400465549b277f749fffbcd667a4ae4bc166ded6fd4aefebe9948a7d3ec2a40",
    "speeches/newyork_speeches_2022.json": "c7db9b62c856f8705c1309c3cd8d9135d899105ac88bbfff9f190a4171182f5c",
    "speeches/newyork_speeches_2023.json": "9d0f4796108ff138ed0cc75d9947802d4e51ce067d47efda4fe1996c34b406c2",
    "speeches/newyork_speeches_2024.json": "eb293a9401699ecb7904921eb730c3fdf66907edd975b3a1a773dc4f3edb223b",
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
    "rates/nyfed_reference_rates_2026-01-02_2026-08-03.csv": 148,
    "rates/DFEDTARU.csv": 32,     # change points of 6,381 daily rows
    "rates/DFEDTARL.csv": 32,
    DTS: 1252,                    # every record date: 1,047 closing rows + 205 derived
    "balance_sheet/WRESBAL.csv": 1225,
    "balance_sheet/WALCL.csv": 1233,
    "treasury/WTREGEN.csv": 1197,  # 2,081 rows, 884 empty (before 2002-12-18)
    GDP_FIRST: 132,               # 1991 Q4 .. 2024 Q3
    "macro/GDP.csv": 51,          # 183 rows, 132 quarters already first-printed
    "macro/M2SL.csv": 378,
    "facilities/RRPONTSYD.csv": 3295,  # 6,126 rows, 2,831 empty
    "speeches/bog_speeches_2019.json": 78,
    "speeches/bog_speeches_2020.json": 53,
    "speeches/bog_speeches_2021.json": 68,
    "speeches/bog_speeches_2022.json": 46,
    "speeches/bog_speeches_2023.json": 95,
    "speeches/bog_speeches_2024.json": 104,  # 105 records, one without content
    "speeches/newyork_speeches_2019.json": 19,
    "speeches/newyork_speeches_2020.json": 13,
    "speeches/newyork_speeches_2021.json": 10,
    "speeches/newyork_speeches_2022.json": 13,
    "speeches/newyork_speeches_2023.json": 10,
    "speeches/newyork_speeches_2024.json": 14,
    QT_CAPS: 24,                  # 12 FOMC decisions, a Treasury and an MBS cap each
    OFR_FSI: 6496,                # every trading day 2000-01-03 .. 2025-09-11
}


@pytest.fixture(scope="module")
def history():
    return list(iter_history_events(HISTORY))


@pytest.fixture(scope="module")
def observations(history):
    return [e for e in history if e.type == OBSERVATION_RECORDED]


@pytest.fixture(scope="module")
def speeches(history):
    return [e for e in history if e.type == SPEECH_RECORDED]


@pytest.fixture(scope="module")
def by_source(observations):
    """(source, series, date) -> payload, published_at."""
    table = {}
    for event in observations:
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
    assert set(HISTORY_FILES) | set(COMPANION_FILES) | set(REFERENCE_FILES) == set(SHA256)
    assert not set(HISTORY_FILES) & set(REFERENCE_FILES)
    counts = {}
    for event in history:
        rel = event.payload["provenance"]["file"]
        counts[rel] = counts.get(rel, 0) + 1
    assert counts == EXPECTED_COUNTS
    for event in history:
        expected = SPEECH_RECORDED if event.payload["provenance"]["file"].startswith("speeches/") \
            else OBSERVATION_RECORDED
        assert event.type == expected


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


def test_qt_caps_are_two_step_series_dated_effective_and_published_at_the_announcement(by_source):
    treasury = {d: (p["value"], at) for (s, series, d), (p, at) in by_source.items()
                if (s, series) == ("fomc", "qt_cap_treasury")}
    mbs = {d: (p["value"], at) for (s, series, d), (p, at) in by_source.items()
           if (s, series) == ("fomc", "qt_cap_mbs")}
    assert len(treasury) == len(mbs) == 12 and set(treasury) == set(mbs)
    assert (min(treasury), max(treasury)) == ("2017-10-01", "2025-12-01")
    assert treasury["2017-10-01"] == ("6", "2017-09-20T18:00:00.000000Z")      # 14:00 EDT
    assert treasury["2018-01-01"] == ("12", "2017-12-13T19:00:00.000000Z")     # 14:00 EST
    # the 2022 phase-in: one announcement, two effective dates, both published at it
    assert treasury["2022-06-01"] == ("30", "2022-05-04T18:00:00.000000Z")
    assert mbs["2022-06-01"] == ("17.5", "2022-05-04T18:00:00.000000Z")
    assert treasury["2022-09-01"] == ("60", "2022-05-04T18:00:00.000000Z")
    assert mbs["2022-09-01"] == ("35", "2022-05-04T18:00:00.000000Z")
    assert (treasury["2025-04-01"][0], mbs["2025-04-01"][0]) == ("5", "35")
    # runoff ended: caps of 0, twice
    assert (treasury["2019-08-01"][0], mbs["2019-08-01"][0]) == ("0", "0")
    assert treasury["2025-12-01"] == ("0", "2025-10-29T18:00:00.000000Z")
    assert mbs["2025-12-01"] == ("0", "2025-10-29T18:00:00.000000Z")
    payload, _ = by_source[("fomc", "qt_cap_mbs", "2022-06-01")]
    assert payload["unit"] == "USD bn" and SERIES["qt_cap_mbs"].join == "step"
    assert payload["provenance"]["raw_value"] == "17.5"
    assert payload["provenance"]["announcement"] == "2022-05-04 14:00 America/New_York"
    assert payload["provenance"]["source_url"].endswith("monetary20220504b.htm")


def test_ofr_fsi_is_every_trading_day_with_its_components_exactly(by_source):
    fsi = {d: (p, at) for (s, series, d), (p, at) in by_source.items() if (s, series) == ("ofr", "ofr_fsi")}
    assert len(fsi) == 6496 and (min(fsi), max(fsi)) == ("2000-01-03", "2025-09-11")
    payload, published_at = fsi["2008-10-10"]
    assert (payload["value"], payload["unit"]) == ("29.32", "index")           # the file's peak
    assert payload["attributes"]["funding"] == "9.582"
    # Friday + 2 SIFMA business days (Columbus Day is closed), 11:00 EDT
    assert published_at == "2008-10-15T15:00:00.000000Z"
    payload, _ = fsi["2022-04-29"]                           # full float precision, an exponent
    assert payload["attributes"]["funding"] == "-0.00009076749291912794"
    assert payload["provenance"]["raw_value"] == "1.3076029547174846"


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


def test_no_float_ever_every_number_is_canonical_decimal_text(observations, tmp_path):
    def no_float(obj):
        assert not isinstance(obj, float)
        if isinstance(obj, dict):
            for value in obj.values():
                no_float(value)

    for event in observations:
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
                  '1.60000000000000000555 ,"percentPercentile1": 1.50 ,"percentPercentile25": "NA" ,'
                  '"percentPercentile75": 2 ,"percentPercentile99": 2.00 ,"revisionIndicator": "" } ] }')
    (event,) = iter_file_events(path)
    # (the rate lies between its percentiles: a row where it does not is refused, test_plausibility)
    assert event.payload["value"] == "1.60000000000000000555"
    assert event.payload["attributes"] == {"p1": "1.5", "p75": "2", "p99": "2"}
    assert event.payload["provenance"]["file"] == path.name  # not a known file: bare name
    assert "volume" not in event.payload["attributes"]       # no companion volume file


# ---- step series ----------------------------------------------------------------------------

def test_fftarget_emits_only_change_points(observations):
    history = observations
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


def test_primary_sources_come_first_and_each_file_is_in_date_order(history, observations):
    files = [rel for rel, _ in itertools.groupby(e.payload["provenance"]["file"] for e in history)]
    assert files == list(HISTORY_FILES)  # each file is one contiguous block, in registry order
    for _, block in itertools.groupby(history, key=lambda e: e.payload["provenance"]["file"]):
        block = list(block)
        dates = [e.payload["date"] for e in block]
        if block[0].type == SPEECH_RECORDED:
            assert dates == sorted(dates)          # several speeches may share a date
        else:                                      # one file may hold two series (QT caps)
            assert dates == sorted(dates)
            for series in {e.payload["series"] for e in block}:
                days = [e.payload["date"] for e in block if e.payload["series"] == series]
                assert days == sorted(set(days))
    first_source = {}
    sources = {}
    for event in observations:
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
    ("qt_runoff_caps.csv", "announcement_date,announcement_time,timezone,effective_date,treasury_cap_bn\n",
     1, "lacks column(s) mbs_cap_bn"),
    ("qt_runoff_caps.csv",
     "announcement_date,announcement_time,timezone,effective_date,treasury_cap_bn,mbs_cap_bn\n"
     "2022-05-04,14:00,America/New_York,2022-06-01,30,17.5\n"
     "2022-05-04,14:00,America/New_York,2022-06-01,60,35\n", 3, "not after"),
    ("qt_runoff_caps.csv",
     "announcement_date,announcement_time,timezone,effective_date,treasury_cap_bn,mbs_cap_bn\n"
     "2022-05-04,14:00,America/New_York,2022-06-01,30,17,5\n", 2, "expected 6 columns"),
    ("qt_runoff_caps.csv",
     "announcement_date,announcement_time,timezone,effective_date,treasury_cap_bn,mbs_cap_bn\n"
     "2022-05-04,14:00,America/New_York,2022-06-01,-30,17.5\n", 2, "below the plausible minimum 0"),
    ("fsi.csv", "Date,OFR FSI,Funding\n2020-03-02,1.5,0.4\n2020-03-03,1.6,x\n", 3, "Funding: not a decimal"),
    ("fsi.csv", "Date,Credit\n2020-03-02,1.5\n", 1, "no 'OFR FSI' column"),
    ("fsi.csv", "Date,OFR FSI\n2020-03-03,1.6\n2020-03-02,1.5\n", 3, "not after"),
    ("fsi.csv", "Date,OFR FSI\n2020-03-02,150\n", 2, "above the plausible maximum 100"),
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


# ---- balance sheet, ON RRP (FRED, $ millions -> USD bn exactly) ---------------------------------

def test_h41_series_are_converted_from_millions_exactly_and_published_next_fed_day_1630(by_source):
    payload, published_at = by_source[("fred", "reserves", "2019-09-18")]
    assert (payload["value"], payload["unit"]) == ("1394.122", "USD bn")
    assert (payload["provenance"]["raw_value"], payload["provenance"]["raw_unit"]) == ("1394122.0", "USD mn")
    assert published_at == "2019-09-19T20:30:00.000000Z"     # Thursday 16:30 EDT
    assert by_source[("fred", "reserves", "2025-10-29")][0]["value"] == "2848.021"
    assert by_source[("fred", "fed_assets", "2022-04-13")][0]["value"] == "8965.487"   # QT peak
    assert by_source[("fred", "fed_assets", "2025-10-29")][0]["value"] == "6587.034"
    # Thanksgiving week: the Thursday is a Fed holiday, so the release moves to Friday.
    assert by_source[("fred", "reserves", "2019-11-27")][1] == "2019-11-29T21:30:00.000000Z"


def test_onrrp_take_up_is_fred_in_billions_published_the_same_day_1315(by_source):
    payload, published_at = by_source[("fred", "onrrp", "2025-10-31")]
    assert (payload["value"], payload["unit"], payload["source"]) == ("51.802", "USD bn", "fred")
    assert published_at == "2025-10-31T17:15:00.000000Z"
    assert by_source[("fred", "onrrp", "2019-09-17")][0]["value"] == "1.825"
    assert SERIES["onrrp"].primary_source == "nyfed"          # FRED only fills


def test_wtregen_is_tga_weekly_avg_and_never_tga(by_source):
    weekly = {d: p for (s, series, d), (p, _) in by_source.items() if series == "tga_weekly_avg"}
    assert weekly["2025-11-19"]["value"] == "941.926"
    assert not any(p["provenance"]["file"] == "treasury/WTREGEN.csv"
                   for (s, series, d), (p, _) in by_source.items() if series == "tga")
    assert {s for (s, series, _) in by_source if series == "tga"} == {"fiscaldata"}


# ---- TGA from the DTS website export --------------------------------------------------------

def _dts_rows():
    """(record date -> {account: Opening Balance Today as int}) read straight from the export,
    independently of the importer."""
    table = collections.defaultdict(dict)
    with (HISTORY / DTS).open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            table[date.fromisoformat(row["Record Date"])][row["Type of Account"]] = row
    return table


_OPENING_ROWS = ("Federal Reserve Account", "Treasury General Account (TGA)",
                 "Treasury General Account (TGA) Opening Balance")


def _opening(rows):
    (label,) = [label for label in _OPENING_ROWS if label in rows]
    return int(rows[label]["Opening Balance Today"])


def test_tga_spot_values_and_publication_t_plus_1_fed_day_1600(by_source):
    payload, published_at = by_source[("fiscaldata", "tga", "2025-10-31")]
    assert (payload["value"], payload["unit"]) == ("926.328", "USD bn")
    assert published_at == "2025-11-03T21:00:00.000000Z"      # Friday -> Monday 16:00 EST
    payload, published_at = by_source[("fiscaldata", "tga", "2025-10-30")]
    assert payload["value"] == "1000.632"
    assert published_at == "2025-10-31T20:00:00.000000Z"
    assert payload["provenance"]["method"] == "closing-row"
    assert payload["provenance"]["account"] == "Treasury General Account (TGA) Closing Balance"


def test_dts_closing_balance_equals_the_next_record_dates_opening_on_the_whole_overlap():
    """The ground for deriving pre-2022-04-18 closings: where the export prints both, T's
    closing balance is exactly the next record date's opening balance, and record dates are
    consecutive Fed business days."""
    table = _dts_rows()
    days = sorted(table)
    assert len(days) == 1252 and (days[0], days[-1]) == (date(2021, 6, 24), date(2026, 6, 23))
    assert all(next_business_day("fed", a) == b for a, b in zip(days, days[1:]))
    closing = "Treasury General Account (TGA) Closing Balance"
    pairs = [(a, b) for a, b in zip(days, days[1:]) if closing in table[a]]
    assert len(pairs) == 1046
    assert [a for a, b in pairs if int(table[a][closing]["Opening Balance Today"]) != _opening(table[b])] == []
    # Across the 2021-10-01 renaming: FY2022's opening balance is 2021-09-30's closing balance.
    fy = table[date(2021, 10, 1)]["Treasury General Account (TGA)"]
    assert fy["Opening Balance This Fiscal Year"] == fy["Opening Balance Today"] == "215160"


def test_derived_tga_closings_reproduce_fred_wtregen_week_averages(by_source):
    """An independent check of the derived closings (2021-06-24 .. 2022-04-15): the H.4.1 week
    average (Thursday .. Wednesday, weekends and holidays carry the last balance) of the daily
    closings matches FRED WTREGEN within $1 million, in the derived era as in the printed one."""
    tga = {date.fromisoformat(d): Decimal(p["value"]) for (s, series, d), (p, _) in by_source.items()
           if series == "tga"}
    weekly = {date.fromisoformat(d): Decimal(p["value"]) for (s, series, d), (p, _) in by_source.items()
              if series == "tga_weekly_avg"}
    first, last = min(tga), max(tga)

    def balance(day):
        while day not in tga:
            day -= timedelta(days=1)
        return tga[day]

    checked = collections.Counter()
    for wednesday, average in weekly.items():
        week = [wednesday - timedelta(days=i) for i in range(7)]
        if week[-1] < first or wednesday > last:
            continue
        mean = sum(balance(d) for d in week) / 7
        assert abs(mean - average) < Decimal("0.001"), wednesday     # $1 million, in USD bn
        checked["derived" if week[-1] < date(2022, 4, 18) else "printed"] += 1
    assert checked == {"derived": 43, "printed": 187}     # weeks with a derived day / without


def test_tga_before_2022_04_18_is_the_next_record_dates_opening_balance(by_source):
    derived = {d: p for (s, series, d), (p, _) in by_source.items()
               if series == "tga" and p["provenance"]["method"] == "next-opening"}
    assert len(derived) == 205 and min(derived) == "2021-06-24" and max(derived) == "2022-04-15"
    assert derived["2021-09-30"]["value"] == "215.16"          # Federal Reserve Account -> TGA
    assert derived["2021-09-30"]["provenance"]["derived_from"] == "2021-10-01 Treasury General Account (TGA)"
    assert derived["2022-04-15"]["value"] == "578.473"
    assert by_source[("fiscaldata", "tga", "2021-09-30")][1] == "2021-10-01T20:00:00.000000Z"
    table = _dts_rows()
    for day, payload in derived.items():
        following = next_business_day("fed", date.fromisoformat(day))
        assert Decimal(payload["value"]) * 1000 == _opening(table[following])


DTS_HEADER = "\ufeffRecord Date,Type of Account,Opening Balance Today,Opening Balance This Month\n"


def test_dts_date_without_a_verifiable_closing_is_not_imported(tmp_path):
    # 2021-09-28 is followed by 2021-09-30: the statement of 09-29 is missing, so 09-28's
    # closing balance cannot be read anywhere; 09-30 (the last date) has no closing row.
    path = _write(tmp_path, "DTS_OpCashBal_x.csv", DTS_HEADER
                  + "2021-09-30,Federal Reserve Account,173745,1\n"
                  + "2021-09-28,Federal Reserve Account,217019,1\n"
                  + "2021-09-28,Supplementary Financing Program Account,0,0\n"
                  + "2021-09-27,Federal Reserve Account,215533,1\n")
    events = list(iter_file_events(path))
    assert [(e.payload["date"], e.payload["value"]) for e in events] == [("2021-09-27", "217.019")]


@pytest.mark.parametrize("body, line, reason", [
    ("2022-04-18,Treasury General Account (TGA) Closing Balance,841253,1\n"
     "2022-04-19,Treasury General Account (TGA) Closing Balance,893351,1\n", 3, "newest first"),
    ("2022-04-19,Treasury General Account (TGA) Closing Balance,893351,1\n"
     "2022-04-18,Treasury General Account (TGA) Closing Balance,841253,1\n"
     "2022-04-19,Treasury General Account (TGA) Opening Balance,841253,1\n", 4, "after the previous"),
    ("2022-04-18,Treasury General Account (TGA) Closing Balance,841253,1\n"
     "2022-04-18,Treasury General Account (TGA) Closing Balance,841254,1\n", 3, "a second"),
    ("2022-04-18,Tax and Loan Note Accounts,1,1\n", 2, "unexpected account"),
    ("2022-04-18,Treasury General Account (TGA) Closing Balance,841 253,1\n", 2, "not a decimal"),
    ("2022-04-18,Treasury General Account (TGA) Closing Balance,841253\n", 2, "expected 4 columns"),
])
def test_malformed_dts_rows_raise_with_file_and_line(tmp_path, body, line, reason):
    path = _write(tmp_path, "DTS_OpCashBal_x.csv", DTS_HEADER + body)
    with pytest.raises(ImportFailed) as caught:
        list(iter_file_events(path))
    assert str(caught.value).startswith(f"{path}:{line}: ") and reason in str(caught.value)


def test_dts_export_without_its_columns_is_refused(tmp_path):
    path = _write(tmp_path, "DTS_OpCashBal_x.csv", "record_date,account_type,open_today_bal\n")
    with pytest.raises(ImportFailed, match=r":1: header lacks column\(s\) Record Date"):
        list(iter_file_events(path))


# ---- M2 and GDP: first prints only where they exist, current vintage honestly late ---------------

def test_gdp_first_prints_are_published_at_their_alfred_vintage_0830(by_source):
    payload, published_at = by_source[("fred", "gdp", "2019-04-01")]
    assert payload["value"] == "21337.898"             # first print; the current vintage says more
    assert published_at == "2019-07-26T12:30:00.000000Z"
    assert payload["provenance"]["vintage"] == published_at
    assert payload["provenance"]["output_type"] == "4"
    assert by_source[("fred", "gdp", "2024-07-01")][0]["value"] == "29349.924"


def test_current_vintages_are_imported_only_without_a_first_print_at_the_snapshot_instant(by_source):
    gdp = {d: (p, t) for (s, series, d), (p, t) in by_source.items() if series == "gdp"}
    first = {d for d, (p, _) in gdp.items() if p["provenance"]["file"] == GDP_FIRST}
    current = {d: t for d, (p, t) in gdp.items() if p["provenance"]["file"] == "macro/GDP.csv"}
    assert len(first) == 132 and min(first) == "1991-10-01" and max(first) == "2024-07-01"
    assert not first & set(current)
    assert sorted(d for d in current if d > "1992") == ["2024-10-01", "2025-01-01", "2025-04-01",
                                                        "2025-07-01"]
    assert set(current.values()) == {"2026-01-03T04:59:59.999999Z"}   # 2026-01-02 end, New York
    assert gdp["2025-07-01"][0]["value"] == "31095.089"
    m2 = {d: (p, t) for (s, series, d), (p, t) in by_source.items() if series == "m2"}
    assert len(m2) == 378
    assert {t for p, t in m2.values()} == {"2026-07-30T03:59:59.999999Z"}  # 2026-07-29 end
    assert m2["2025-10-01"][0]["value"] == "22249.8"
    assert {p["provenance"]["vintage_kind"] for p, _ in m2.values()} == {"current"}
    # No first print is ever invented: every value is either ALFRED's or a dated current vintage.
    for payload, published_at in list(gdp.values()) + list(m2.values()):
        assert payload["provenance"]["vintage"] == published_at


def test_a_current_vintage_of_unknown_age_is_refused(tmp_path):
    path = tmp_path / "M2SL.csv"
    path.write_bytes((HISTORY / "macro/M2SL.csv").read_bytes() + b"2026-07-01,23200.0\n")
    with pytest.raises(ImportFailed, match="snapshot date is unknown"):
        list(iter_file_events(path))


def test_gdp_current_vintage_alone_has_no_first_prints_to_defer_to(tmp_path):
    (tmp_path / "macro").mkdir()
    shutil.copy(HISTORY / "macro/GDP.csv", tmp_path / "macro")
    events = list(iter_history_events(tmp_path))
    assert len(events) == 183
    assert {e.published_at for e in events} == {"2026-01-03T04:59:59.999999Z"}
    (tmp_path / "fred").mkdir()
    shutil.copy(HISTORY / GDP_FIRST, tmp_path / "fred")
    assert len(list(iter_file_events(tmp_path / "macro/GDP.csv"))) == 51


@pytest.mark.parametrize("document, reason", [
    ({"output_type": 1, "observations": []}, "not 4"),
    ({"output_type": 4, "observations": [
        {"realtime_start": "1992-01-29", "date": "1991-10-01", "value": "5736.6"},
        {"realtime_start": "1992-04-28", "date": "1992-01-01", "value": "5809,3"}]}, "not a decimal"),
    ({"output_type": 4, "observations": [
        {"realtime_start": "1991-10-01", "date": "1991-10-01", "value": "5736.6"}]}, "not after"),
    ({"output_type": 4}, "observations"),
])
def test_malformed_alfred_payload_is_refused(tmp_path, document, reason):
    path = _write(tmp_path, "GDP_observations_output_type4_x.json", json.dumps(document))
    with pytest.raises(ImportFailed) as caught:
        list(iter_file_events(path))
    assert str(caught.value).startswith(f"{path}:1: ") and reason in str(caught.value)


# ---- speeches ----------------------------------------------------------------------------------

def test_speeches_are_recorded_with_their_text_hash_and_end_of_day_new_york(speeches):
    assert len(speeches) == 523
    board = [e for e in speeches if e.payload["institution"] == "Board of Governors"]
    new_york = [e for e in speeches if e.payload["institution"] == "New York Fed"]
    assert (len(board), len(new_york)) == (444, 79)
    assert all(e.payload["url"].startswith("https://www.federalreserve.gov/") for e in board)
    assert all(e.payload["source"] == "fed-speeches-archive" for e in speeches)
    for event in speeches:
        p = event.payload
        assert p["content_hash"] == hashlib.sha256(p["text"].encode("utf-8")).hexdigest()
        assert event.key == (f"speech/{p['url']}" if p["url"] else
                             f"speech/{p['institution']}/{p['date']}/{p['content_hash'][:16]}")
    (powell,) = [e for e in board if e.key.endswith("/powell20191008a.htm")]
    assert powell.payload["date"] == "2019-10-08" and powell.payload["speaker"] == "Jerome H. Powell"
    assert powell.published_at == "2019-10-09T03:59:59.999999Z"       # 23:59:59.999999 EDT
    december = [e for e in board if e.payload["date"] == "2019-12-18"]
    assert december and december[0].published_at == "2019-12-19T04:59:59.999999Z"  # EST


def test_speech_text_is_the_archive_content_exactly(speeches):
    records = json.loads((HISTORY / "speeches/newyork_speeches_2019.json").read_text(encoding="utf-8"))
    by_hash = {e.payload["content_hash"]: e.payload for e in speeches}
    for record in records:
        payload = by_hash[hashlib.sha256(record["content"].encode("utf-8")).hexdigest()]
        assert payload["text"] == record["content"]
        assert (payload["speaker"], payload["title"], payload["url"]) == (record["speaker"], record["title"], "")


def test_a_speech_without_content_is_skipped(speeches):
    assert not [e for e in speeches if e.payload["date"] == "2024-02-13"
                and e.payload["title"].startswith("Accountability for Banks")]


def test_bog_speech_infos_adds_nothing_the_speech_files_lack(speeches):
    """Why bog_speech_infos.json is not imported: for 2019-2024 it is the speech files' metadata,
    field for field; its 2006-2018 entries have no text to record."""
    infos = json.loads((HISTORY / "speeches/bog_speech_infos.json").read_text(encoding="utf-8"))
    index = {info["href"]: info for year in infos.values() for info in year}
    assert sum(len(year) for year in infos.values()) == 1157
    for year in range(2019, 2025):
        for record in json.loads((HISTORY / f"speeches/bog_speeches_{year}.json").read_text(encoding="utf-8")):
            assert {k: v for k, v in record.items() if k != "content"} == index[record["href"]]
        assert len(infos[str(year)]) == EXPECTED_COUNTS[f"speeches/bog_speeches_{year}.json"] + (year == 2024)
    with pytest.raises(ImportFailed, match="not imported: metadata only"):
        iter_file_events(HISTORY / "speeches/bog_speech_infos.json")


def test_duplicate_speeches_do_not_break_the_import(tmp_path):
    record = {"speaker": "John C. Williams", "position": "President", "date": "October 07, 2020",
              "title": "T", "content": "Repo rates firmed."}
    path = _write(tmp_path, "newyork_speeches_2020.json", json.dumps([record, record, dict(record, title="U")]))
    store = MemoryEventStore()
    assert import_paths(store, [path]) == {str(path): (3, 1)}
    assert import_paths(store, [path]) == {str(path): (3, 0)}


@pytest.mark.parametrize("record, reason", [
    ({"speaker": "A", "title": "T", "date": "2019-12-18", "content": "x"}, "like 'December 18, 2019'"),
    ({"speaker": "A", "title": "T", "date": "Smarch 18, 2019", "content": "x"}, "like 'December 18, 2019'"),
    ({"speaker": "A", "title": "T", "date": "February 30, 2019", "content": "x"}, "not a valid date"),
    ({"speaker": "", "title": "T", "date": "December 18, 2019", "content": "x"}, "speaker"),
    ({"speaker": "A", "date": "December 18, 2019", "content": "x"}, "title"),
    ({"speaker": "A", "title": "T", "date": "December 18, 2019", "content": ["x"]}, "content"),
])
def test_malformed_speech_record_raises_with_file_and_line(tmp_path, record, reason):
    good = {"speaker": "A", "title": "T", "date": "December 19, 2019", "content": "x"}
    path = _write(tmp_path, "bog_speeches_2019.json", json.dumps([good, record], indent=4))
    with pytest.raises(ImportFailed) as caught:
        list(iter_file_events(path))
    assert str(caught.value).startswith(f"{path}:8: ") and reason in str(caught.value)
