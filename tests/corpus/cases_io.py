"""Load the corpus tables (cases/*.yaml) into pytest parameters; expand the file matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CASES = Path(__file__).parent / "cases"


def load(name: str) -> Any:
    return yaml.safe_load((CASES / f"{name}.yaml").read_text(encoding="utf-8"))


def _good_row(fmt: dict[str, Any], n: int) -> str:
    return fmt["row"].format(id=n, time=1704067200000 + n)


def _mutate(fmt: dict[str, Any], index: dict[str, int], mutation: dict[str, Any]) -> str:
    fields = _good_row(fmt, 2).split(",")
    if "whole" in mutation:
        return str(mutation["whole"])
    if "append" in mutation:
        return ",".join([*fields, mutation["append"]])
    if "drop_last" in mutation:
        return ",".join(fields[: -mutation["drop_last"]])
    fields[index[mutation["field"]]] = str(mutation["value"])
    return ",".join(fields)


def file_cases() -> list[Any]:
    """One case per (format, mutation) — the bad row at line 2 between two good rows — and
    one per whole-file case."""
    table = load("files")
    out = []
    for fmt_name, fmt in table["formats"].items():
        index = table["field_index"][fmt["kind"]]
        for mut_name, mutation in table["mutations"].items():
            if mutation.get("field") and mutation["field"] not in index:
                continue
            if fmt_name not in mutation.get("only", [fmt_name]):
                continue
            text = "\n".join([_good_row(fmt, 1), _mutate(fmt, index, mutation), _good_row(fmt, 3)])
            case = {
                "id": f"{fmt_name}-{mut_name}",
                "file": fmt["file"],
                "kind": fmt["kind"],
                "text": text + "\n",
                "valid": 2,
                "rejects": [f"{fmt['file']}:2: "],
                "reason": mutation["error"],
            }
            out.append(pytest.param(case, id=case["id"]))
    for case in table["files"]:
        out.append(pytest.param(case, id=case["id"]))
    return out


def simple(name: str, section: str | None = None) -> list[Any]:
    data = load(name)
    rows = data[section] if section else data
    return [pytest.param(c, id=c["id"]) for c in rows]


ALL_CASE_IDS = [
    p.id
    for p in (
        *file_cases(),
        *simple("grpc", "validate"),
        *simple("grpc", "grpcurl"),
        *simple("config"),
        *simple("cli"),
    )
]
