"""A local exchange: WebSocket + REST speaking Binance's, Coinbase's or Kraken's protocol,
replaying recorded real frames, with injectable faults.

The stream is one shared script of frames: each new connection continues where the
last one stopped (as a live exchange moves on while a client is away). Faults:
  drop={i}        frame i is never sent (an in-stream gap)
  duplicate={i}   frame i is sent twice
  swap={i}        frames i and i+1 are sent in the other order
  malformed={i: text}   a bad frame is sent before frame i
  disconnect={i: n}     before frame i the server closes the connection, and frames
                  i..i+n-1 pass while the client is away (lost to it)
  delay_s         sleep before every frame (slow reads)
REST serves the trades of ALL frames (what the exchange really has) in each exchange's
backfill format, from the recorded raw values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from candleflow.symbols import to_binance
from devstack.fakes.server import LocalServer, free_port


@dataclass
class Faults:
    drop: set[int] = field(default_factory=set)
    duplicate: set[int] = field(default_factory=set)
    swap: set[int] = field(default_factory=set)
    malformed: dict[int, str] = field(default_factory=dict)
    disconnect: dict[int, int] = field(default_factory=dict)
    delay_s: float = 0.0
    heartbeat_s: float = 0.2  # control frames while idle (Coinbase/Kraken send them)
    silent: bool = False  # a dead peer: no frames, no heartbeats, no pongs


def raw_trades(exchange: str, frames: list[str]) -> list[dict[str, Any]]:
    """The raw trade objects inside the frames (REST answers are built from them)."""
    out: list[dict[str, Any]] = []
    for frame in frames:
        obj = json.loads(frame)
        if exchange == "coinbase":
            if obj.get("channel") == "market_trades":
                out.extend(t for e in obj["events"] for t in e["trades"])
            elif obj.get("type") in ("match", "last_match"):
                out.append(obj)
        elif exchange == "binance":
            data = obj.get("data", obj)
            if data.get("e") in ("trade", "aggTrade"):
                out.append(data)
        elif exchange == "kraken" and obj.get("channel") == "trade":
            out.extend(obj["data"])
    return out


class FakeExchange(LocalServer):
    def __init__(self, exchange: str, frames: list[str], faults: Faults | None = None) -> None:
        self.exchange = exchange
        self.frames = frames
        self.faults = faults or Faults()
        self.trades = raw_trades(exchange, frames)
        self.position = 0
        self.connections = 0
        self.subscriptions: list[Any] = []
        self.rest_calls = 0
        self.finished = asyncio.Event()  # every scripted frame was handled
        self.port = free_port()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/aggTrades", self._binance_rest)
        app.router.add_get("/api/v3/historicalTrades", self._binance_rest)
        app.router.add_get("/products/{product}/trades", self._coinbase_rest)
        app.router.add_get("/0/public/Trades", self._kraken_rest)
        app.router.add_get("/{tail:.*}", self._ws)

    # --- WebSocket ------------------------------------------------------------------

    async def _subscribed(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        """Wait for the subscribe frames the exchange expects, and acknowledge them."""
        if self.exchange == "binance":  # combined streams are named in the URL
            self.subscriptions.append(request.query.get("streams", ""))
            return
        msg = await ws.receive(timeout=10)
        sub = json.loads(msg.data)
        self.subscriptions.append(sub)
        if self.exchange == "coinbase":
            await ws.send_str(
                json.dumps(
                    {
                        "channel": "subscriptions",
                        "sequence_num": 0,
                        "events": [{"subscriptions": {}}],
                    }
                )
            )
        else:
            await ws.send_str(
                json.dumps({"method": "subscribe", "success": True, "result": {"channel": "trade"}})
            )

    def _heartbeat(self) -> str | None:
        if self.exchange == "coinbase":
            return json.dumps({"channel": "heartbeats", "events": []})
        if self.exchange == "kraken":
            return json.dumps({"channel": "heartbeat"})
        return None  # Binance sends WebSocket pings, not frames

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        f = self.faults
        ws = web.WebSocketResponse(heartbeat=None, autoping=not f.silent)
        await ws.prepare(request)
        self.connections += 1
        if f.silent:  # accept, then never answer anything (half-open TCP, hung server)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
            return ws
        try:
            await self._subscribed(ws, request)
            while self.position < len(self.frames):
                i = self.position
                if i in f.disconnect:
                    lost = f.disconnect.pop(i)
                    self.position = i + lost
                    await ws.close()
                    return ws
                if f.delay_s:
                    await asyncio.sleep(f.delay_s)
                if i in f.malformed:
                    await ws.send_str(f.malformed[i])
                if i in f.swap and i + 1 < len(self.frames):
                    order = [i + 1, i]
                    self.position = i + 2
                else:
                    order = [i]
                    self.position = i + 1
                for j in order:
                    if j in f.drop:
                        continue
                    await ws.send_str(self.frames[j])
                    if j in f.duplicate:
                        await ws.send_str(self.frames[j])
                await asyncio.sleep(0)
            self.finished.set()
            heartbeat = self._heartbeat()
            while not ws.closed:  # idle: heartbeats only (and pongs), until the client leaves
                try:
                    msg = await ws.receive(timeout=f.heartbeat_s)
                except TimeoutError:
                    if heartbeat:
                        await ws.send_str(heartbeat)
                    continue
                if msg.type in (
                    WSMsgType.CLOSE,
                    WSMsgType.CLOSING,
                    WSMsgType.CLOSED,
                    WSMsgType.ERROR,
                ):
                    break
        except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
            pass
        return ws

    # --- REST -----------------------------------------------------------------------

    async def _binance_rest(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        aggregate = request.path.endswith("aggTrades")
        symbol = request.query["symbol"]
        from_id = int(request.query.get("fromId", "0"))
        limit = int(request.query.get("limit", "500"))
        rows = []
        for t in self.trades:
            if t["s"] != symbol:
                continue
            tid = t["a"] if aggregate else t["t"]
            if tid >= from_id:
                rows.append(
                    {k: t[k] for k in ("a", "p", "q", "f", "l", "T", "m")} | {"M": True}
                    if aggregate
                    else {
                        "id": tid,
                        "price": t["p"],
                        "qty": t["q"],
                        "time": t["T"],
                        "isBuyerMaker": t["m"],
                        "isBestMatch": True,
                    }
                )
        rows.sort(key=lambda r: r["a"] if aggregate else r["id"])
        return web.json_response(rows[:limit])

    async def _coinbase_rest(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        product = request.match_info["product"]
        after = int(request.query.get("after", str(2**63)))
        limit = int(request.query.get("limit", "1000"))
        rows = [
            {
                "time": t["time"],
                "trade_id": int(t["trade_id"]),
                "price": t["price"],
                "size": t["size"],
                "side": t["side"].lower(),
            }
            for t in self.trades
            if t["product_id"] == product and int(t["trade_id"]) < after
        ]
        rows.sort(key=lambda r: -r["trade_id"])  # newest first, like the real API
        return web.json_response(rows[:limit])

    async def _kraken_rest(self, request: web.Request) -> web.Response:
        self.rest_calls += 1
        pair = request.query["pair"]
        since = int(request.query.get("since", "0"))
        rows = []
        for t in self.trades:
            base, quote = t["symbol"].split("/")
            native = {"BTC": "XBT"}.get(base, base) + quote
            if native != pair:
                continue
            secs = _iso_seconds(t["timestamp"])
            if secs >= since:
                rows.append(
                    [str(t["price"]), str(t["qty"]), secs, t["side"][0], "l", "", t["trade_id"]]
                )
        body = (
            '{"error":[],"result":{"'
            + pair
            + '":'
            + json.dumps(rows, default=str)
            + ',"last":"0"}}'
        )
        return web.Response(text=body, content_type="application/json")


def _iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def binance_agg_frames(trades: list[Any], native: str) -> list[str]:
    """Binance combined-stream aggTrade frames (documented format) from file trades."""
    stream = f"{native.lower()}@aggTrade"
    out = []
    for t in trades:
        ms = t.event_time_us // 1000
        out.append(
            json.dumps(
                {
                    "stream": stream,
                    "data": {
                        "e": "aggTrade",
                        "E": ms,
                        "s": native,
                        "a": t.trade_id,
                        "p": str(t.price),
                        "q": str(t.quantity),
                        "f": t.first_trade_id,
                        "l": t.last_trade_id,
                        "T": ms,
                        "m": t.side.value == "SELL",
                        "M": True,
                    },
                },
                separators=(",", ":"),
            )
        )
    return out


__all__ = ["FakeExchange", "Faults", "binance_agg_frames", "raw_trades", "to_binance"]
