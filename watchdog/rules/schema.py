"""The JSON Schema (draft 2020-12) of a rules file, for editors, linters and ``watchdog schema``.

It is generated from the pydantic rule models of ``watchdog.rules.ruleset`` (so a new field shows up by
itself) with the file's spelling: ``for``, not the Python ``for_``. TOML has no null and the
loader refuses quoted numbers, so optional fields are just optional (never ``null``) and
thresholds are plain numbers. Each field gets a description, and the checks a schema can
express are added on top of the types: kebab-case ids, label names, ``for``/``grace`` syntax,
calendar terms, series names, exactly one of ``above``/``below``, hysteresis that goes with its
direction. The loader (``watchdog check``) remains the authority: it also compiles expressions,
checks placeholders and hysteresis order, which no schema can.

Imports only ``watchdog.rules.ruleset``, pydantic and the standard library.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from watchdog.rules import ruleset as rules
from watchdog.rules.derived import DerivedSeries

if TYPE_CHECKING:
    from pydantic_core import core_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_KEBAB = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_LABEL = r"^[A-Za-z_][A-Za-z0-9_]*$"
_DURATION = r"^\s*\d+\s*[smhdw]\s*$"
_FOR = r"^\s*(?:\d+bd|\d+\s*[smhdw])\s*$"
_BUSINESS_DAYS = r"^\s*\d+bd\s*$"
_NOT_BLANK = r"\S"

# Field descriptions, by field name (as written in a file), for every kind of rule; a
# (table, field) entry overrides the shared one for that table.
_SHARED: dict[str, str] = {
    "id": "Unique rule id, kebab-case (lowercase letters and digits joined by single hyphens, "
          "e.g. sofr-over-iorb). Alerts, silences and the log name the rule by it.",
    "severity": "How serious an alert of this rule is: info, warning or critical (routes, "
                "inhibitions and 'quiet' use it).",
    "summary": "One-line alert text with {{ name }} placeholders, each optionally piped through "
               "the filters " + ", ".join(rules.SUMMARY_FILTERS) + " with literal arguments (e.g. "
               "{{ value | float | round(2) }}); no {% %} tags (loops, conditions), operators, "
               "calls or subscripts, and an unknown placeholder is refused when loading. At most "
               f"{rules.SUMMARY_MAX_CHARS} characters; a longer rendered summary is cut there and "
               f"ends '… [cut at {rules.SUMMARY_MAX_CHARS} characters]'.",
    "description": "Longer explanation of what the rule means and why it is set where it is.",
    "labels": "Extra labels for routing, grouping and inhibition (name = \"value\"); names are "
              "letters, digits and underscores; 'rule' and 'severity' are set by the rule itself.",
    "series": "Canonical series name (DOMAIN.md), e.g. sofr, effr, iorb, tga, reserves.",
    # threshold
    "expr": "Expression over canonical series names and attributes (e.g. \"bp(sofr - iorb)\", "
            "\"sofr.p99\"); it must be a number, compared with above or below.",
    "above": "Fire when expr is strictly greater than this number (give above or below, not both).",
    "below": "Fire when expr is strictly less than this number (give above or below, not both).",
    "recover_below": "Hysteresis for above: a firing alert resolves only once expr is strictly "
                      "below this level (<= above). Without it, it resolves when expr is no longer "
                      "above the threshold.",
    "recover_above": "Hysteresis for below: a firing alert resolves only once expr is strictly "
                      "above this level (>= below).",
    "for": "Persistence before firing: \"Nbd\" fires on the N-th consecutive business day on "
           "which the condition holds (days on which an input was not published neither count "
           "nor break the streak), or a duration such as \"30m\", \"6h\", \"3d\".",
    "keep_firing_for": "Keep a firing alert firing until the recovery has held this many "
                       "business days (\"Nbd\").",
    "skip_on": "Calendar terms (e.g. month_end, quarter_turn) on whose dates the rule is not "
               "evaluated: how selected-date pressure is told apart from persistence.",
    "only_on": "Calendar terms on whose dates alone the rule is evaluated.",
    "above_on": "Calendar-dependent thresholds for above: term = threshold, used on dates with "
                "that term (the highest matching one), e.g. { quarter_turn = 25 }.",
    "below_on": "Calendar-dependent thresholds for below: term = threshold (the lowest matching "
                "one applies).",
    # keyword
    "phrases": "Phrases to look for in speech texts, matched case-insensitively on word "
               "boundaries with simple inflections.",
    "ignore": "Stop-phrases: a phrase inside one of these does not count (e.g. \"Federal "
              "Reserve\" for \"reserve\").",
    "speakers": "Only speeches by these speakers (surnames); empty means every speaker.",
    "institutions": "Only speeches from these institutions; empty means every institution.",
    "near": "Proximity pairs: a word of left within `within` words of a word of right counts "
            "as a hit.",
    "min_hits": "Flag a speech only when phrases and proximity pairs hit at least this many times.",
    "left": "Words of one side of the proximity pair.",
    "right": "Words of the other side of the proximity pair.",
    "within": "Greatest distance in words between the two sides (either order).",
    # composite
    "all": "Fire while all of these rules (ids) are firing.",
    "any": "Fire while any of these rules (ids) is firing.",
    "at_least": "With of: fire while at least this many of the rules in of are firing.",
    "of": "With at_least: the rule ids counted.",
    # revision
    "bp": "Flag a revision of a published value by this many basis points or more.",
    # staleness
    "grace": "How long after the series' nominal publication time a missing value is late "
             "(a duration such as \"30m\", \"1h\").",
}
_BY_TABLE: dict[tuple[str, str], str] = {
    ("series", "name"): "Name rules read it by: lowercase letters, digits and underscores "
                        "(e.g. effr_iorb); not a recorded series or a word of the language.",
    ("series", "expr"): "Expression over series, attributes, other derived series, windows and "
                        "calendar terms (e.g. \"bp(effr - iorb)\"); it must be a number.",
    ("series", "unit"): "How its numbers read on the status page and the report: bp, %, USD bn, "
                        "USD bn/month, index or days.",
    ("series", "description"): "What it measures and why officials watch it.",
    ("revision_rule", "series"): "Canonical series whose revisions are flagged.",
    ("staleness_rule", "series"): "Canonical market series expected every business day of its "
                                  "calendar (e.g. sofr).",
}
_TABLE_DESCRIPTIONS: dict[str, str] = {
    "rule": "Threshold rules ([[rule]]): fire when an expression over series crosses a level.",
    "keyword_rule": "Keyword rules ([[keyword_rule]]): flag speeches that contain phrases.",
    "composite_rule": "Composite rules ([[composite_rule]]): fire on a combination of other rules.",
    "revision_rule": "Revision rules ([[revision_rule]]): flag revised published values.",
    "staleness_rule": "Staleness rules ([[staleness_rule]]): fire when a series is late.",
    "series": "Derived series ([[series]]): a named expression over series that any rule's expr "
              "may read by its name, e.g. effr_iorb = bp(effr - iorb).",
}


class _TomlSchema(GenerateJsonSchema):
    """pydantic's generator, for TOML: no null, decimals are numbers, no per-field titles."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return {"type": "number"}

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        if out.get("default") is None:
            out.pop("default", None)
        elif out.get("type") == "number" and isinstance(out["default"], str):
            number = float(out["default"])
            out["default"] = int(number) if number.is_integer() else number
        return out

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def rule_tables() -> dict[str, type[BaseModel]]:
    """Top-level table name -> model, as the loader reads them (derived series included)."""
    return {**rules._TABLES, "series": DerivedSeries}


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rules file: ``rule`` (array of Rule), ``keyword_rule`` (array of
    KeywordRule) and the other rule tables, nothing else at the top level."""
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for table, model in rule_tables().items():
        schema = model.model_json_schema(by_alias=True, schema_generator=_TomlSchema,
                                         ref_template="#/$defs/{model}")
        for name, nested in schema.pop("$defs", {}).items():
            defs[name] = nested
        defs[model.__name__] = schema
        properties[table] = {
            "type": "array",
            "description": _TABLE_DESCRIPTIONS.get(table, f"[[{table}]] tables."),
            "items": {"$ref": f"#/$defs/{model.__name__}"},
        }
    models = {model.__name__: (table, model) for table, model in rule_tables().items()}
    # Filled in by the loader from [[series]] tables; a file must not write it.
    defs[rules.Rule.__name__]["properties"].pop("derived", None)
    for name, schema in defs.items():
        table, model = models.get(name, ("", None))
        _describe(schema, table, model)
        _constrain(schema, name)
    return {
        "$schema": DRAFT,
        "title": "watchdog rules file",
        "description": "A TOML rules file of liquidity-watchdog (rules/*.toml). Numbers are "
                       "exact decimals; thresholds are strict; `watchdog check` validates a file "
                       "fully (expressions, placeholders) and reports FILE:LINE problems.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
    }


def rules_json_schema_text() -> str:
    """What ``watchdog schema`` prints: the schema as indented JSON, with a final newline."""
    return json.dumps(rules_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _describe(schema: dict[str, Any], table: str, model: type[BaseModel] | None) -> None:
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            text = _BY_TABLE.get((table, name)) or _SHARED.get(name)
            if name == "summary" and model is not None:
                text = _summary_description(model)
            prop["description"] = text or f"The {name!r} setting (see the rules README)."
        # Put the description first: easier to read in the printed schema.
        schema["properties"][name] = {"description": prop.pop("description"), **prop}


def _summary_description(model: type[BaseModel]) -> str:
    names = sorted(model.PLACEHOLDERS)
    text = _SHARED["summary"] + " Placeholders: " + ", ".join(f"{{{{ {n} }}}}" for n in names)
    if model.KIND == "threshold":
        text += ", and the expression's inputs (e.g. {{ sofr }}, {{ sofr.p99 }})"
    return text + "."


def _constrain(schema: dict[str, Any], model: str) -> None:
    """Add what a schema can say beyond pydantic's types (the loader's own checks)."""
    props = schema.get("properties", {})
    terms = list(rules.TERMS)
    series = sorted(rules.SERIES)

    def add(name: str, **keywords: Any) -> None:
        if name in props:
            props[name].update(keywords)

    def items(name: str, **keywords: Any) -> None:
        if name in props and isinstance(props[name].get("items"), dict):
            props[name]["items"].update(keywords)

    add("id", pattern=_KEBAB)
    add("summary", maxLength=rules.SUMMARY_MAX_CHARS)
    if "labels" in props:
        props["labels"]["propertyNames"] = {"pattern": _LABEL, "not": {"enum": ["rule", "severity"]}}
    add("for", pattern=_FOR)
    add("keep_firing_for", pattern=_BUSINESS_DAYS)
    add("grace", pattern=_DURATION)
    if model == "RevisionRule":
        add("bp", minimum=0)
    for name in ("phrases", "ignore", "speakers", "institutions", "left", "right"):
        items(name, pattern=_NOT_BLANK)
    for name in ("all", "any", "of"):
        items(name, pattern=_KEBAB)
    for name in ("skip_on", "only_on"):
        items(name, enum=terms)
    for name in ("above_on", "below_on"):
        if name in props:
            props[name]["propertyNames"] = {"enum": terms}
    if "series" in props:
        allowed = series
        if model == "StalenessRule":
            allowed = [s for s in series if rules.SERIES[s].join == "market"]
        props["series"]["enum"] = allowed

    if model == "Rule":
        schema["oneOf"] = [{"required": ["above"]}, {"required": ["below"]}]
        schema["dependentRequired"] = {
            key: [need] for key, need in (("recover_below", "above"), ("recover_above", "below"),
                                          ("above_on", "above"), ("below_on", "below"))
            if key in props}
    elif model == "CompositeRule" and {"all", "any", "at_least", "of"} <= set(props):
        schema["oneOf"] = [{"required": ["all"]}, {"required": ["any"]},
                           {"required": ["at_least", "of"]}]
        schema["dependentRequired"] = {"at_least": ["of"], "of": ["at_least"]}
