"""Structural BACKWARD compatibility of Avro schemas: can a reader with `new` read data
written with `old`? (Avro schema resolution rules; the registry's BACKWARD check is the
second opinion in tests/test_contracts.py.)

BACKWARD allows removing fields and adding fields with defaults; it forbids adding a field
without a default, changing a type other than by Avro promotion, dropping an enum symbol
that old data may hold (unless the enum has a default), and changing a decimal's
precision/scale or a logical type.
"""

from __future__ import annotations

from typing import Any

# writer type -> reader types that can read it (Avro spec "Schema Resolution")
_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _kind(t: Any) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, dict):
        return str(t["type"]) if t["type"] in _PRIMITIVES else str(t["type"])
    return str(t)


def _resolve(named: dict[str, Any], t: Any) -> Any:
    """Follow a reference to a named type defined earlier in the schema."""
    if isinstance(t, str) and t not in _PRIMITIVES:
        return named.get(t, named.get(t.rsplit(".", 1)[-1], t))
    return t


def _collect(t: Any, named: dict[str, Any]) -> None:
    if isinstance(t, list):
        for b in t:
            _collect(b, named)
    elif isinstance(t, dict):
        if t.get("type") in ("record", "enum", "fixed") and "name" in t:
            named[t["name"]] = t
            named[t["name"].rsplit(".", 1)[-1]] = t
        for f in t.get("fields", []):
            _collect(f["type"], named)
        for key in ("items", "values"):
            if key in t:
                _collect(t[key], named)


def _readable(w: Any, r: Any, path: str, wn: dict[str, Any], rn: dict[str, Any]) -> list[str]:
    w, r = _resolve(wn, w), _resolve(rn, r)
    if isinstance(w, list):  # every branch the writer may have used must be readable
        out: list[str] = []
        for branch in w:
            out += _readable(branch, r, path, wn, rn)
        return out
    if isinstance(r, list):  # the reader takes the first branch that matches
        for branch in r:
            if not _readable(w, branch, path, wn, rn):
                return []
        return [f"{path}: {_kind(w)} written, reader union {[_kind(b) for b in r]} cannot read"]
    wk, rk = _kind(w), _kind(r)
    wl = w.get("logicalType") if isinstance(w, dict) else None
    rl = r.get("logicalType") if isinstance(r, dict) else None
    if wl != rl:
        return [f"{path}: logical type changed {wl} -> {rl}"]
    if wl == "decimal" and (w.get("precision"), w.get("scale", 0)) != (
        r.get("precision"),
        r.get("scale", 0),
    ):
        return [
            f"{path}: decimal({w.get('precision')},{w.get('scale', 0)}) -> "
            f"decimal({r.get('precision')},{r.get('scale', 0)})"
        ]
    if wk in _PRIMITIVES or rk in _PRIMITIVES:
        if rk == wk or rk in _PROMOTIONS.get(wk, set()):
            return []
        return [f"{path}: type changed {wk} -> {rk}"]
    if wk != rk:
        return [f"{path}: type changed {wk} -> {rk}"]
    if wk == "record":
        return _record(w, r, path, wn, rn)
    if wk == "enum":
        missing = set(w["symbols"]) - set(r["symbols"])
        if missing and "default" not in r:
            return [f"{path}: enum symbols removed {sorted(missing)} and no enum default"]
        return []
    if wk == "array":
        return _readable(w["items"], r["items"], f"{path}[]", wn, rn)
    if wk == "map":
        return _readable(w["values"], r["values"], f"{path}{{}}", wn, rn)
    if wk == "fixed" and w.get("size") != r.get("size"):
        return [f"{path}: fixed size changed {w.get('size')} -> {r.get('size')}"]
    return []


def _record(
    w: dict[str, Any], r: dict[str, Any], path: str, wn: dict[str, Any], rn: dict[str, Any]
) -> list[str]:
    out: list[str] = []
    written = {f["name"]: f for f in w["fields"]}
    for field in r["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        source = next((written[n] for n in names if n in written), None)
        where = f"{path}.{field['name']}" if path else field["name"]
        if source is None:
            if "default" not in field:
                out.append(f"{where}: added without a default")
            continue
        out += _readable(source["type"], field["type"], where, wn, rn)
    return out


def backward_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` cannot read data written with `old` (empty list: BACKWARD compatible)."""
    wn: dict[str, Any] = {}
    rn: dict[str, Any] = {}
    _collect(old, wn)
    _collect(new, rn)
    return _readable(old, new, "", wn, rn)
