"""Every trade frame of the recorded real captures, parsed and compared value by value."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from candleflow.domain import InstrumentKind, Side, Trade
from devstack.sample_data import CAPTURES
from ingest import ADAPTERS, binance, coinbase, kraken
from ingest.captures import read_frames
from ingest.common import ParseOptions, Reject, RejectReason, TradeBatch, iso_to_us

EXPECTED = Path(__file__).parent / "data" / "expected_trades.tsv"
CAPTURE_FILES = sorted(p.name for p in CAPTURES.glob("*.jsonl*"))


def _expected() -> dict[tuple[str, str, int], dict[str, str]]:
    with EXPECTED.open() as f:
        return {
            (r["exchange"], r["symbol"], int(r["trade_id"])): r
            for r in csv.DictReader(f, delimiter="\t")
        }


def _as_row(t: Trade) -> dict[str, str]:
    return {
        "exchange": t.exchange,
        "symbol": t.symbol,
        "native_symbol": t.native_symbol,
        "trade_id": str(t.trade_id),
        "price": str(t.price),
        "quantity": str(t.quantity),
        "side": t.side.value,
        "event_time_us": str(t.event_time_us),
        "first_trade_id": "" if t.first_trade_id is None else str(t.first_trade_id),
        "last_trade_id": "" if t.last_trade_id is None else str(t.last_trade_id),
        "kind": t.kind.value,
    }


def _parse_file(name: str) -> tuple[list[Trade], dict[str, int]]:
    trades: list[Trade] = []
    outcome: dict[str, int] = defaultdict(int)
    for frame in read_frames(CAPTURES / name):
        result = ADAPTERS[frame.exchange].parse(frame.data, 42)
        if isinstance(result, Reject):
            outcome[result.reason.value] += 1
        elif result.control:
            outcome["control"] += 1
        else:
            outcome["trade_frames"] += 1
            trades.extend(result)
    return trades, outcome


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_every_capture_trade_matches_expected_values(name: str) -> None:
    expected = _expected()
    trades, outcome = _parse_file(name)
    assert trades, f"{name} has trade frames"
    for t in trades:
        key = (t.exchange, t.symbol, t.trade_id)
        assert key in expected, f"unexpected trade {key} in {name}"
        assert _as_row(t) == expected[key], key
        assert t.ingest_time_us == 42
    # the only rejects in real captures are the other channels the recorder subscribed to
    assert set(outcome) <= {"trade_frames", "control", "UNEXPECTED_MESSAGE"}


def test_captures_cover_the_whole_expected_file() -> None:
    seen = {(t.exchange, t.symbol, t.trade_id) for n in CAPTURE_FILES for t in _parse_file(n)[0]}
    assert seen == set(_expected())


def test_coinbase_advanced_ids_are_the_recorded_contiguous_ranges() -> None:
    # From shared/data/README.md, independent of the parser: BTC-USD 147 trades with ids
    # 1068571991-1068572137, ETH-USD 132 trades with ids 833140679-833140810, no gap.
    trades, _ = _parse_file("coinbase_advanced_market_trades_2026-08-09.jsonl")
    by_symbol: dict[str, list[int]] = defaultdict(list)
    for t in trades:
        by_symbol[t.symbol].append(t.trade_id)
    assert sorted(by_symbol["BTC-USD"]) == list(range(1068571991, 1068572138))
    assert sorted(by_symbol["ETH-USD"]) == list(range(833140679, 833140811))
    assert len(trades) == 147 + 132  # no trade twice


def test_snapshot_newest_first_comes_out_in_id_order() -> None:
    first = next(read_frames(CAPTURES / "coinbase_advanced_market_trades_2026-08-09.jsonl"))
    batch = coinbase.parse(first.data, 0)
    assert isinstance(batch, TradeBatch) and batch.sequence == 0
    ids = [t.trade_id for t in batch]
    assert ids == sorted(ids) and ids[-1] == 1068572090


def test_spot_checks_written_from_the_raw_frames() -> None:
    e = _expected()
    # Binance aggTrade {"a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,
    # "l":19862790,"T":1633998523963,"m":false}: buyer not maker -> taker BUY, ms -> µs.
    b = e[("binance", "NKN-USDT", 15683430)]
    assert (b["price"], b["quantity"], b["side"], b["event_time_us"]) == (
        "0.35280000",
        "58.00000000",
        "BUY",
        "1633998523963000",
    )
    assert (b["first_trade_id"], b["last_trade_id"], b["native_symbol"]) == (
        "19862790",
        "19862790",
        "NKNUSDT",
    )
    # Coinbase Exchange last_match BAND-GBP trade 881613: maker side "sell" -> taker BUY.
    c = e[("coinbase", "BAND-GBP", 881613)]
    assert (c["price"], c["quantity"], c["side"]) == ("14.7775", "0.04", "BUY")
    # "2021-04-17T16:43:30.244075Z" = 1618677810 s (date -u -d @1618677810) + 244075 µs
    assert c["event_time_us"] == "1618677810244075"
    # Coinbase Advanced BTC-USD 1068572096 ("side":"BUY" = maker) at 21:05:51.426861Z
    a = e[("coinbase", "BTC-USD", 1068572096)]
    assert (a["price"], a["quantity"], a["side"], a["event_time_us"]) == (
        "65083.66",
        "0.00100346",
        "SELL",
        "1786309551426861",
    )
    # Kraken v1 ["353.81000000","1.71754604","1618678150.827816","s","m",""] XMR/USD
    k = [r for r in e.values() if r["exchange"] == "kraken" and r["price"] == "353.81000000"]
    assert len(k) == 1
    assert (k[0]["quantity"], k[0]["side"], k[0]["event_time_us"], k[0]["symbol"]) == (
        "1.71754604",
        "SELL",
        "1618678150827816",
        "XMR-USD",
    )


KRAKEN_V2_SNAPSHOT = (
    '{"channel":"trade","type":"snapshot","data":['
    '{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,"ord_type":"market",'
    '"trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"},'
    '{"symbol":"MATIC/USD","side":"buy","price":0.5116,"qty":1.41,"ord_type":"limit",'
    '"trade_id":4665905,"timestamp":"2023-09-25T07:49:36.925603Z"}]}'
)


def test_kraken_v2_trade_numbers_are_exact_and_sorted() -> None:
    # Kraken's documented v2 example (no v2 session was recorded): numbers, not strings.
    batch = kraken.parse(KRAKEN_V2_SNAPSHOT, 7)
    assert isinstance(batch, TradeBatch)
    assert [(t.trade_id, t.price, t.quantity, t.side) for t in batch] == [
        (4665905, Decimal("0.5116"), Decimal("1.41"), Side.BUY),
        (4665906, Decimal("0.5117"), Decimal("40.0"), Side.SELL),
    ]
    assert batch[0].symbol == "MATIC-USD" and batch[0].native_symbol == "MATIC/USD"
    assert batch[1].event_time_us == 1695628177708706


@pytest.mark.parametrize(
    ("adapter", "frame", "control"),
    [
        (kraken, '{"channel":"heartbeat"}', "heartbeat"),
        (
            kraken,
            '{"method":"subscribe","result":{"channel":"trade","symbol":"BTC/USD"},'
            '"success":true,"time_in":"2023-09-25T09:04:31.742599Z"}',
            "subscribe",
        ),
        (kraken, '{"event":"heartbeat"}', "heartbeat"),
        (
            coinbase,
            '{"type":"heartbeat","sequence":1,"last_trade_id":5,"product_id":"BTC-USD",'
            '"time":"2021-04-17T16:43:30.244075Z"}',
            "heartbeat",
        ),
        (binance, '{"result":null,"id":1}', "subscribe_ack"),
    ],
)
def test_control_frames_are_control_not_rejects(adapter, frame: str, control: str) -> None:
    result = adapter.parse(frame, 0)
    assert isinstance(result, TradeBatch) and result.control == control and not result


def test_clock_skew_is_checked_only_when_configured() -> None:
    frame = next(read_frames(CAPTURES / "binance_spot_ws_frames_2021-10-12.jsonl")).data
    assert isinstance(binance.parse(frame, 1_800_000_000_000_000), TradeBatch)
    live = ParseOptions(max_skew_us=60_000_000)
    skewed = binance.parse(frame, 1_800_000_000_000_000, live)
    assert isinstance(skewed, Reject) and skewed.reason is RejectReason.CLOCK_SKEW
    assert isinstance(binance.parse(frame, 1633998523963000 + 1_000_000, live), TradeBatch)


def test_unsubscribed_symbol_is_rejected_when_symbols_are_given() -> None:
    frame = next(read_frames(CAPTURES / "binance_spot_ws_frames_2021-10-12.jsonl")).data
    result = binance.parse(frame, 0, ParseOptions(symbols=frozenset({"BTC-USDT"})))
    assert isinstance(result, Reject) and result.reason is RejectReason.UNKNOWN_SYMBOL


def test_binance_microsecond_times_and_coin_m_inverse() -> None:
    frame = (
        '{"stream":"btcusd_perp@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSD_PERP",'
        '"a":480537903,"p":"62000.1","q":"3","f":10,"l":12,"T":1778198400123456,"m":true}}'
    )
    (t,) = binance.parse(frame, 0)  # type: ignore[misc]
    assert t.event_time_us == 1778198400123456 and t.side is Side.SELL
    assert t.kind is InstrumentKind.INVERSE and t.contract_size == Decimal(100)
    assert t.symbol == "BTC-USD-PERP" and t.trade_count == 3


@pytest.mark.parametrize(
    "text",
    [
        "2026-08-09T21:05:38.50436Z",
        "2026-08-09T21:05:48.228568804Z",
        "2021-04-17T16:43:30Z",
        "2024-02-29T23:59:59.000001Z",
    ],
)
def test_iso_to_us_agrees_with_datetime(text: str) -> None:
    head, _, frac = text[:-1].partition(".")
    dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert iso_to_us(text, "t") == int(dt.timestamp()) * 10**6 + int((frac + "000000")[:6])


def test_rest_backfill_responses() -> None:
    body = (
        '[{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",'
        '"time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}]'
    )
    (t,) = binance.parse_backfill(body, "BNB-BTC", False, 5)  # type: ignore[misc]
    assert (t.trade_id, t.price, t.quantity, t.side, t.event_time_us) == (
        28457,
        Decimal("4.00000100"),
        Decimal("12.00000000"),
        Side.SELL,
        1499865549590000,
    )
    req = binance.backfill_request("BNB-BTC", 28457, aggregate=True)
    assert req.url.endswith("/api/v3/aggTrades") and req.params["fromId"] == "28457"
    cb = (
        '[{"time":"2021-04-17T16:43:30.244075Z","trade_id":74,"price":"10.00000000",'
        '"size":"0.01000000","side":"buy"},{"time":"2021-04-17T16:43:29.1Z","trade_id":73,'
        '"price":"9.5","size":"1","side":"sell"}]'
    )
    got = coinbase.parse_backfill(cb, "BTC-USD", 5)
    assert [(t.trade_id, t.side, t.price) for t in got] == [  # type: ignore[union-attr]
        (73, Side.BUY, Decimal("9.5")),
        (74, Side.SELL, Decimal("10.00000000")),
    ]
    kr = (
        '{"error":[],"result":{"XXBTZUSD":[["62750.60000","0.00040000",1716000000.123456,'
        '"b","m","",70000001]],"last":"1716000000123456000"}}'
    )
    (k,) = kraken.parse_backfill(kr, "BTC-USD", 5)  # type: ignore[misc]
    assert (k.trade_id, k.price, k.side, k.event_time_us, k.native_symbol) == (
        70000001,
        Decimal("62750.60000"),
        Side.BUY,
        1716000000123456,
        "BTC/USD",
    )
    assert kraken.backfill_request("BTC-USD", 1716000000123456).params["pair"] == "XBTUSD"


COINBASE_MATCHES = CAPTURES / "coinbase_exchange_matches_2021-04-17.jsonl"


def test_coinbase_match_sequence_is_the_trades_sequence() -> None:
    """Trade v2: a Coinbase Exchange match carries the product's `sequence`; the trade keeps
    it, on the hot path and the checked path alike, and a sequence that is not a long is
    refused by name. (Advanced Trade and the other exchanges have none: None.)"""
    import json

    frames = [json.loads(line) for line in COINBASE_MATCHES.read_text().splitlines()]
    matches = [f for f in frames if f.get("type") in ("match", "last_match")]
    assert len(matches) >= 100
    for f in matches:
        raw = json.dumps(f)
        (fast,) = coinbase.parse(raw, 0)  # type: ignore[misc]
        (checked,) = coinbase._parse_checked(raw, 0, ParseOptions())  # type: ignore[misc]
        assert fast == checked
        assert (fast.trade_id, fast.sequence) == (f["trade_id"], f["sequence"])
    bad = coinbase.parse(json.dumps({**matches[0], "sequence": "x1"}), 0)
    assert isinstance(bad, Reject) and bad.reason is RejectReason.BAD_TYPE
    assert "sequence" in bad.detail
