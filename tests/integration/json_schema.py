# SPDX-License-Identifier: Apache-2.0
"""A JSON Schema (draft 2020-12) validator for the keywords docs/json-result.schema.json uses,
on Python's standard library only: $ref (local), type, const, enum, required, properties,
additionalProperties, items, minimum, minLength, pattern, oneOf, allOf, not, if/then/else.
An unknown keyword is an error, so the schema cannot silently use one this does not check."""
import json
import re
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "json-result.schema.json"

KNOWN = {"$schema", "$id", "$defs", "title", "description", "$ref", "type", "const", "enum",
         "required", "properties", "additionalProperties", "items", "minimum", "minLength",
         "pattern", "oneOf", "allOf", "not", "if", "then", "else"}

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _same(a, b):
    """JSON equality: True is not 1."""
    return type(a) is type(b) and a == b


def errors(value, schema, root, path="$"):
    """Every violation of schema by value, as "PATH: what" strings (empty: valid)."""
    out = []
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) this validator does not check: {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        out += errors(value, target, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            return out + [f"{path}: {json.dumps(value)[:80]} is not of type {types}"]
    if "const" in schema and not _same(value, schema["const"]):
        out.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                out.append(f"{path}: required key {k!r} missing")
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected key {k!r}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += errors(v, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "minimum" in schema:
        if value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "oneOf" in schema:
        results = [errors(value, s, root, path) for s in schema["oneOf"]]
        passing = sum(1 for r in results if not r)
        if passing != 1:
            best = min(results, key=len)
            out.append(f"{path}: matches {passing} of oneOf's schemas, not 1"
                       + (f" (closest: {'; '.join(best[:5])})" if passing == 0 else ""))
    for s in schema.get("allOf", []):
        out += errors(value, s, root, path)
    if "not" in schema and not errors(value, schema["not"], root, path):
        out.append(f"{path}: matches a schema it must not match ({schema['not']})")
    if "if" in schema:
        branch = "then" if not errors(value, schema["if"], root, path) else "else"
        if branch in schema:
            out += errors(value, schema[branch], root, path)
    return out


def load_schema():
    return json.loads(SCHEMA.read_text())


def validate(document, schema=None):
    """Raises AssertionError listing every violation of docs/json-result.schema.json."""
    schema = schema or load_schema()
    problems = errors(document, schema, schema)
    assert not problems, "not a valid result document:\n  " + "\n  ".join(problems) + \
        "\n" + json.dumps(document, indent=2)[:3000]
