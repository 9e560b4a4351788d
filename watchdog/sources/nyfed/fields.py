"""The New York Fed's names for what a reference rate carries, and ours: rate types, the
percentile and volume fields of the Markets API and of the reference-rates CSV export. The live
parser (``nyfed.rates``) and the history importer (``nyfed.history``) both read them from here,
so an API rename is one edit."""
from __future__ import annotations

# API `type` (also the CSV export's "Rate Type") -> canonical series. SOFRAI (averages and
# index) has no percentRate and is not a series we alert on, so it is skipped like any type we
# do not know: not an error.
RATE_TYPES = {"SOFR": "sofr", "TGCR": "tgcr", "BGCR": "bgcr", "EFFR": "effr", "OBFR": "obfr"}
TYPE_OF_SERIES = {series: rate_type for rate_type, series in RATE_TYPES.items()}

# Markets API row field -> attribute name in the observation payload.
PERCENTILE_FIELDS = {
    "percentPercentile1": "p1",
    "percentPercentile25": "p25",
    "percentPercentile75": "p75",
    "percentPercentile99": "p99",
}
VOLUME_FIELD = "volumeInBillions"          # USD bn, as the catalogue's volume attribute
ROW_ATTRIBUTES = {**PERCENTILE_FIELDS, VOLUME_FIELD: "volume"}
EFFR_ATTRIBUTES = {"targetRateFrom": "target_from", "targetRateTo": "target_to"}

# Reference-rates CSV export column -> the same attribute names.
CSV_ATTRIBUTES = {"1st Percentile (%)": "p1", "25th Percentile (%)": "p25",
                  "75th Percentile (%)": "p75", "99th Percentile (%)": "p99",
                  "Volume ($Billions)": "volume"}
