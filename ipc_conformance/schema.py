"""The JSON schemas (JSON Schema 2020-12) and a validator for them: the conformance report's
(``report.schema.json``) and the bench's (``bench.schema.json``, ``ipc-conformance bench --json``).

The schema is a checked-in file any JSON Schema tool can use (``jsonschema``,
``check-jsonschema`` in CI).  The project does not depend on such a tool: this module
validates the subset of the vocabulary the schema uses, and refuses a schema that
uses any other keyword, so that no rule is silently skipped.

    python -m ipc_conformance.schema report.json bench.json   # exit 1 and one line per problem

A document is checked against the schema its ``schema`` field names.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.schema.json")
BENCH_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.schema.json")
#: Keywords that only annotate (ignored) and keywords this validator checks.
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$defs"})
CHECKED = frozenset({"type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum",
                     "pattern", "anyOf", "$ref", "propertyNames"})
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def load(path: str = PATH) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def validate(data: Any, schema: Optional[Mapping[str, Any]] = None) -> List[str]:
    """Every way ``data`` breaks the schema, as ``$.path: problem`` lines (empty: it conforms)."""
    root = schema if schema is not None else load()
    problems: List[str] = []
    _check(data, root, root, "$", problems)
    return problems


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _check(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], where: str, out: List[str]) -> None:
    unknown = set(schema) - ANNOTATIONS - CHECKED
    if unknown:
        raise ValueError(f"schema at {where} uses keywords this validator does not check: {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"schema at {where}: only local #/$defs/ references are supported, not {ref!r}")
        _check(value, root["$defs"][ref.split("/")[-1]], root, where, out)
    if "anyOf" in schema:
        if all(_collect(value, s, root, where) for s in schema["anyOf"]):
            out.append(f"{where}: {value!r:.80} matches none of the allowed forms")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            out.append(f"{where}: {type(value).__name__} {value!r:.60}, but should be {' or '.join(kinds)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r:.60}, but should be one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: {value!r:.60}, but should be {schema['const']!r}")
    if "minimum" in schema and _is(value, "number") and value < schema["minimum"]:
        out.append(f"{where}: {value}, but should be at least {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r:.60} does not match {schema['pattern']!r}")
    if isinstance(value, dict):
        _check_object(value, schema, root, where, out)
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            _check(item, schema["items"], root, f"{where}[{n}]", out)


def _check_object(value: Dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any], where: str,
                  out: List[str]) -> None:
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            out.append(f"{where}: missing {key!r}")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if "propertyNames" in schema:
            _check(key, schema["propertyNames"], root, f"{where} key {key!r}", out)
        if key in props:
            _check(item, props[key], root, f"{where}.{key}", out)
        elif extra is False:
            out.append(f"{where}: unexpected {key!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{where}.{key}", out)


def _collect(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], where: str) -> List[str]:
    found: List[str] = []
    _check(value, schema, root, where, found)
    return found


def schema_for(data: Any) -> Dict[str, Any]:
    """The schema a document names: the bench's for ``ipc-conformance-bench/…``, else the report's."""
    named = str(data.get("schema", "")) if isinstance(data, dict) else ""
    return load(BENCH_PATH if named.startswith("ipc-conformance-bench/") else PATH)


def main(argv: List[str]) -> int:
    bad = 0
    for path in argv:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        problems = validate(data, schema_for(data))
        for line in problems:
            print(f"{path}: {line}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
