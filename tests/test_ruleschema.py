"""The JSON Schema of rule files (watchdog.rules.schema): it covers every field of every rule model
under its TOML name, describes each one, accepts the shipped rules and rejects what the loader
rejects where a schema can tell.

jsonschema is not a dependency of the project, so the schema is checked with the small
draft 2020-12 validator below, which refuses any keyword it does not implement (a schema using
one would otherwise pass unchecked). If jsonschema happens to be installed, it is used too."""
from __future__ import annotations

import json
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from watchdog.rules.ruleset import KeywordRule, Proximity, Rule, load_rules, parse_rules
from watchdog.rules.schema import DRAFT, rule_tables, rules_json_schema, rules_json_schema_text

REPO = Path(__file__).resolve().parent.parent

_ANNOTATIONS = {"$schema", "title", "description", "default", "examples"}


def validate(instance: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$") -> list[str]:
    """Errors of ``instance`` against ``schema`` (a subset of draft 2020-12)."""
    errors: list[str] = []
    unknown = set(schema) - _ANNOTATIONS - set(_KEYWORDS) - {"$defs"}
    assert not unknown, f"validator does not implement {sorted(unknown)} (at {at})"
    for keyword, value in schema.items():
        if keyword in _KEYWORDS:
            errors.extend(_KEYWORDS[keyword](instance, value, schema, root, at))
    return errors


def _type_ok(instance: Any, name: str) -> bool:
    if name == "number":
        return isinstance(instance, (int, float, Decimal)) and not isinstance(instance, bool)
    if name == "integer":
        return isinstance(instance, int) and not isinstance(instance, bool)
    return isinstance(instance, {"string": str, "array": list, "object": dict,
                                 "boolean": bool}[name])


def _k_type(i, v, s, r, at):
    names = v if isinstance(v, list) else [v]
    return [] if any(_type_ok(i, n) for n in names) else [f"{at}: not of type {v}"]


def _k_properties(i, v, s, r, at):
    if not isinstance(i, dict):
        return []
    return [e for k, sub in v.items() if k in i for e in validate(i[k], sub, r, f"{at}.{k}")]


def _k_additional(i, v, s, r, at):
    if not isinstance(i, dict):
        return []
    extra = [k for k in i if k not in s.get("properties", {})]
    if v is False:
        return [f"{at}: unknown key {k!r}" for k in extra]
    return [e for k in extra for e in validate(i[k], v, r, f"{at}.{k}")]


def _k_required(i, v, s, r, at):
    return [f"{at}: missing {k!r}" for k in v if isinstance(i, dict) and k not in i]


def _k_items(i, v, s, r, at):
    return [e for n, x in enumerate(i) for e in validate(x, v, r, f"{at}[{n}]")] if isinstance(i, list) else []


def _k_ref(i, v, s, r, at):
    assert v.startswith("#/$defs/"), v
    return validate(i, r["$defs"][v.removeprefix("#/$defs/")], r, at)


def _k_enum(i, v, s, r, at):
    return [] if i in v else [f"{at}: {i!r} not in {v}"]


def _k_pattern(i, v, s, r, at):
    return [] if not isinstance(i, str) or re.search(v, i) else [f"{at}: {i!r} does not match {v}"]


def _k_max_length(i, v, s, r, at):
    return [] if not isinstance(i, str) or len(i) <= v else [f"{at}: longer than {v} characters"]


def _k_min_items(i, v, s, r, at):
    return [] if not isinstance(i, list) or len(i) >= v else [f"{at}: fewer than {v} items"]


def _k_minimum(i, v, s, r, at):
    return [] if not _type_ok(i, "number") or i >= v else [f"{at}: {i} < {v}"]


def _k_maximum(i, v, s, r, at):
    return [] if not _type_ok(i, "number") or i <= v else [f"{at}: {i} > {v}"]


def _k_one_of(i, v, s, r, at):
    passing = sum(not validate(i, sub, r, at) for sub in v)
    return [] if passing == 1 else [f"{at}: matches {passing} of oneOf, not exactly 1"]


def _k_any_of(i, v, s, r, at):
    return [] if any(not validate(i, sub, r, at) for sub in v) else [f"{at}: matches none of anyOf"]


def _k_not(i, v, s, r, at):
    return [f"{at}: matches a 'not' schema"] if not validate(i, v, r, at) else []


def _k_dependent_required(i, v, s, r, at):
    if not isinstance(i, dict):
        return []
    return [f"{at}: {k!r} requires {need!r}" for k, needs in v.items() if k in i
            for need in needs if need not in i]


def _k_property_names(i, v, s, r, at):
    return [e for k in i for e in validate(k, v, r, f"{at}.<{k}>")] if isinstance(i, dict) else []


_KEYWORDS = {
    "type": _k_type, "properties": _k_properties, "additionalProperties": _k_additional,
    "required": _k_required, "items": _k_items, "$ref": _k_ref, "enum": _k_enum,
    "pattern": _k_pattern, "maxLength": _k_max_length, "minItems": _k_min_items, "minimum": _k_minimum, "maximum": _k_maximum,
    "oneOf": _k_one_of, "anyOf": _k_any_of, "not": _k_not,
    "dependentRequired": _k_dependent_required, "propertyNames": _k_property_names,
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return rules_json_schema()


def errors_of(schema: dict[str, Any], text: str) -> list[str]:
    return validate(tomllib.loads(text, parse_float=Decimal), schema, schema)


RULE = '[[rule]]\nid = "r1"\nexpr = "bp(sofr - iorb)"\nabove = 10\n'


# ---- shape ----

def test_top_level_shape(schema):
    assert schema["$schema"] == DRAFT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["properties"]["rule"]["items"] == {"$ref": "#/$defs/Rule"}
    assert schema["properties"]["keyword_rule"]["items"] == {"$ref": "#/$defs/KeywordRule"}
    assert set(schema["properties"]) == set(rule_tables())
    assert json.loads(rules_json_schema_text()) == schema
    assert rules_json_schema_text().endswith("}\n")


def test_every_field_of_every_model_is_in_the_schema_under_its_toml_name(schema):
    models = {model.__name__: model for model in rule_tables().values()} | {"Proximity": Proximity}
    assert {"Rule", "KeywordRule", "Proximity"} <= set(schema["$defs"])
    for name, model in models.items():
        definition = schema["$defs"][name]
        names = {info.alias or field for field, info in model.model_fields.items()}
        if name == "Rule":
            names.discard("derived")     # filled in from [[series]] tables, never written
        assert set(definition["properties"]) == names, name
        required = {info.alias or field for field, info in model.model_fields.items()
                    if info.is_required()}
        assert set(definition.get("required", [])) == required, name
        assert definition["additionalProperties"] is False
        assert definition.get("description"), name
        for field, prop in definition["properties"].items():
            assert prop.get("description", "").strip(), f"{name}.{field} has no description"
    assert "for" in schema["$defs"]["Rule"]["properties"]
    assert "for_" not in json.dumps(schema)


def test_curated_descriptions_for_the_core_fields(schema):
    """The fallback text is for fields added later; the ones known now are described."""
    for model in (Rule, KeywordRule, Proximity):
        for field, prop in schema["$defs"][model.__name__]["properties"].items():
            assert "see the rules README" not in prop["description"], f"{model.__name__}.{field}"


def test_no_null_and_numbers_are_numbers(schema):
    text = json.dumps(schema)
    assert '"null"' not in text
    assert schema["$defs"]["Rule"]["properties"]["above"]["type"] == "number"
    assert schema["$defs"]["Rule"]["properties"]["for"]["type"] == "string"


# ---- validating files ----

@pytest.mark.parametrize("path", sorted((REPO / "rules").glob("*.toml")), ids=lambda p: p.name)
def test_the_shipped_rule_files_validate(schema, path):
    # the loader accepts the folder (a composite may name rules of other files) ...
    loaded = load_rules([str(REPO / "rules")])
    assert path.stem in {Path(r.source.split(":")[0]).stem for r in (*loaded.all_rules, *loaded.series)}
    assert errors_of(schema, path.read_text(encoding="utf-8")) == []   # ... and so does the schema


def test_a_full_file_validates(schema):
    text = RULE.replace("above = 10", 'above = 10\nrecover_below = 5.5\nfor = "2bd"\n'
                        'severity = "critical"\nsummary = "x"\ndescription = "y"\n'
                        'labels = { area = "repo" }') + '''
[[rule]]
id = "low"
expr = "onrrp"
below = 50
recover_above = 100
for = "6h"

[[keyword_rule]]
id = "reserves-not-abundant"
phrases = ["no longer abundant"]
ignore = ["Federal Reserve"]
speakers = ["Powell"]
institutions = ["Board of Governors"]
near = [{ left = ["reserves"], right = ["ample", "scarce"], within = 8 }]
min_hits = 2
severity = "info"
'''
    parse_rules(text)                # the loader accepts it too
    assert errors_of(schema, text) == []


@pytest.mark.parametrize("text, error", [
    (RULE + "\n[alerts]\nx = 1\n", "$: unknown key 'alerts'"),
    (RULE + "treshold = 10\n", "$.rule[0]: unknown key 'treshold'"),
    (RULE + 'for_ = "2bd"\n', "$.rule[0]: unknown key 'for_'"),
    (RULE.replace("above = 10", 'above = "10"'), "$.rule[0].above: not of type number"),
    (RULE + "below = 5\n", "$.rule[0]: matches 2 of oneOf, not exactly 1"),
    (RULE.replace("above = 10", "recover_below = 5"), "$.rule[0]: 'recover_below' requires 'above'"),
    (RULE + "recover_above = 5\n", "$.rule[0]: 'recover_above' requires 'below'"),
    (RULE.replace('"r1"', '"R1"'), "$.rule[0].id: 'R1' does not match ^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    (RULE + 'for = "2 days"\n', "$.rule[0].for: '2 days' does not match"),
    (RULE + 'severity = "page"\n', "$.rule[0].severity: 'page' not in"),
    (RULE + 'labels = { severity = "x" }\n', "$.rule[0].labels.<severity>: matches a 'not' schema"),
    ('[[keyword_rule]]\nid = "k"\nphrases = []\n', "$.keyword_rule[0].phrases: fewer than 1 items"),
    ('[[keyword_rule]]\nid = "k"\nphrases = ["a"]\nnear = [{ left = ["a"], right = ["b"], '
     'within = 0 }]\n', "$.keyword_rule[0].near[0].within: 0 < 1"),
    ('[[keyword_rule]]\nid = "k"\nphrases = ["a"]\nmood = 1\n', "$.keyword_rule[0]: unknown key 'mood'"),
    ('rule = { id = "x" }\n', "$.rule: not of type array"),
    (RULE + 'summary = "' + "x" * 2001 + '"\n', "$.rule[0].summary: longer than 2000 characters"),
])
def test_the_schema_rejects(schema, text, error):
    assert any(e.startswith(error) for e in errors_of(schema, text)), errors_of(schema, text)


def test_with_jsonschema_if_installed(schema):
    jsonschema = pytest.importorskip("jsonschema")  # not a project dependency
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((REPO / "rules").glob("*.toml")):
        data = json.loads(json.dumps(tomllib.loads(path.read_text(encoding="utf-8")),
                                     default=str))
        assert list(validator.iter_errors(data)) == []
    assert list(validator.iter_errors({"rule": [], "oops": 1}))
