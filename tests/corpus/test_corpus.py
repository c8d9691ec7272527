"""The bad-input corpus, offline part: file rows, gRPC request validation, settings from the
environment and command lines. Every case asserts the error it must give (cases/*.yaml)."""

from __future__ import annotations

import importlib
import io
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from typer.testing import CliRunner

from candleflow import binance_files
from candleflow.env_settings import SettingsError
from serving import validate
from serving.pb import pb
from tests.corpus.cases_io import file_cases, simple

GOOD_ROW = "1,42000.5,0.1,4200.05,{t},true,true"


def _zip_bytes(rows: int, members: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        text = "".join(
            f"{i},{42000 + i % 97}.5,0.{i % 9 + 1},1.0,{1704067200000 + i},true,true\n"
            for i in range(1, rows + 1)
        )
        for name in members or ["BTCUSDT-trades-2024-01-01.csv"]:
            zf.writestr(name, text)
    return buf.getvalue()


def write_case_file(case: dict[str, Any], tmp: Path) -> Path:
    path = tmp / case["file"]
    if "bytes_hex" in case:
        path.write_bytes(bytes.fromhex(case["bytes_hex"]))
    elif "zip_members" in case:
        path.write_bytes(_zip_bytes(3, case["zip_members"]))
    elif "zip_rows" in case:
        data = bytearray(_zip_bytes(case["zip_rows"]))
        if "zip_cut" in case:
            data = data[: int(len(data) * case["zip_cut"])]
        if "zip_flip" in case:  # corrupt the compressed stream, keep the directory
            at = int(len(data) * case["zip_flip"])
            for i in range(at, at + 64):
                data[i] ^= random.Random(i).randrange(1, 256)
        path.write_bytes(bytes(data))
    else:
        path.write_text(case["text"], encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("case", file_cases())
def test_file(case: dict[str, Any], tmp_path: Path) -> None:
    path = write_case_file(case, tmp_path)
    if "raises" in case:
        for errors in (None, []):  # a file-level fault stops the file either way
            with pytest.raises(binance_files.BinanceFileError) as info:
                list(binance_files.read_trades(path, file_kind=case["kind"], errors=errors))
            assert case["raises"] in str(info.value)
        return
    errors: list[binance_files.BinanceFileError] = []
    trades = list(binance_files.read_trades(path, file_kind=case["kind"], errors=errors))
    assert len(trades) == case["valid"], [str(e) for e in errors]
    expected = case.get("rejects", [])
    assert len(errors) == len(expected), [str(e) for e in errors]
    for err, want in zip(errors, expected, strict=True):
        assert want in str(err)
        if "reason" in case:
            assert case["reason"] in str(err)
    if expected:  # without an errors list, the first bad row stops the file, same message
        with pytest.raises(binance_files.BinanceFileError) as info:
            list(binance_files.read_trades(path, file_kind=case["kind"]))
        assert str(info.value) == str(errors[0])


def _expand(value: Any) -> Any:
    if isinstance(value, dict) and "repeat" in value:
        items = [value["repeat"]] * value["times"]
        return value["join"].join(items) if "join" in value else items
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


REQUESTS = {
    "StreamCandles": (
        pb.StreamCandlesRequest,
        lambda r: validate.stream_candles(r, {"candles.v1"}),
    ),
    "StreamAnomalies": (
        pb.StreamAnomaliesRequest,
        lambda r: validate.stream_anomalies(r, {"anomalies.v1"}),
    ),
    "GetCandles": (pb.GetCandlesRequest, validate.get_candles),
    "GetAnomaly": (pb.GetAnomalyRequest, validate.get_anomaly),
}


@pytest.mark.parametrize("case", simple("grpc", "validate"))
def test_grpc_validate(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANDLEFLOW_CANDLES_INTERVALS", raising=False)
    validate.served_intervals.cache_clear()
    cls, check = REQUESTS[case["method"]]
    request = json_format.ParseDict(_expand(case["req"]), cls())
    with pytest.raises(validate.BadArgument) as info:
        check(request)
    assert case["error"] in str(info.value)


@pytest.mark.parametrize("case", simple("config"))
def test_config(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case["env"].items():
        monkeypatch.setenv(key, value)
    module, name = case["settings"].split(":")
    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(SettingsError) as info:
        cls()
    wanted = case["error"] if isinstance(case["error"], list) else [case["error"]]
    for text in wanted:
        assert text in str(info.value)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", text))


@pytest.mark.parametrize("case", simple("cli"))
def test_cli(case: dict[str, Any], tmp_path: Path) -> None:
    from candleflow.cli import app

    good = tmp_path / "BTCUSDT-trades-2024-01-01.csv"
    good.write_text(GOOD_ROW.format(t=1704067200000) + "\n")
    empty = tmp_path / "BTCUSDT-trades-2024-01-02.csv"
    empty.write_text("")
    badrow = tmp_path / "BTCUSDT-trades-2024-01-03.csv"
    badrow.write_text(
        GOOD_ROW.format(t=1704067200000) + "\n2,abc,0.1,4200.05,1704067200001,true,true\n"
    )
    badzip = tmp_path / "BTCUSDT-trades-2024-01-04.zip"
    badzip.write_bytes(_zip_bytes(500)[:300])
    names = {"tmp": tmp_path, "good": good, "empty": empty, "badrow": badrow, "badzip": badzip}
    args = [a.format(**names) for a in case["args"]]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, (result.output, result.exception)
    assert _flat(case["error"]) in _flat(result.output), result.output
