"""Fetch a gap's missing trades over REST, page by page, for each exchange.

Each exchange pages differently: Binance forward by id (fromId), Coinbase Exchange
backwards by id (after = older than), Kraken forward by time (since). All return the
trades of the range found; the caller decides what is new (GapTracker).
"""

from __future__ import annotations

import aiohttp

from candleflow.domain import Trade
from ingest import binance, coinbase, kraken
from ingest.common import ParseOptions, Reject, now_us
from ingest.gaps import Gap
from ingest.rest import RestError, RestRequest, fetch

MAX_PAGES = 50  # 50 x 1000 trades: a longer outage is reported unfillable past this


class BackfillError(RestError):
    pass


async def _get(session: aiohttp.ClientSession, request: RestRequest, base: str | None) -> bytes:
    return await fetch(session, request.with_base(base))


def _check(result: list[Trade] | Reject) -> list[Trade]:
    if isinstance(result, Reject):
        raise BackfillError(f"bad REST response: {result.reason} {result.detail}")
    return result


async def fetch_gap(
    session: aiohttp.ClientSession,
    gap: Gap,
    *,
    rest_base: str | None = None,
    aggregate: bool = False,
    options: ParseOptions | None = None,
) -> list[Trade]:
    """The trades with ids in [gap.first_id, gap.last_id] the exchange's REST API returns."""
    options = options or ParseOptions()
    found: dict[int, Trade] = {}
    if gap.exchange == "binance":
        next_id = gap.first_id
        for _ in range(MAX_PAGES):
            body = await _get(
                session, binance.backfill_request(gap.symbol, next_id, aggregate), rest_base
            )
            page = _check(binance.parse_backfill(body, gap.symbol, aggregate, now_us(), options))
            for t in page:
                if gap.first_id <= t.trade_id <= gap.last_id:
                    found[t.trade_id] = t
            if not page or page[-1].trade_id >= gap.last_id:
                break
            next_id = page[-1].trade_id + 1
    elif gap.exchange == "coinbase":
        before = gap.last_id + 1
        for _ in range(MAX_PAGES):
            body = await _get(session, coinbase.backfill_request(gap.symbol, before), rest_base)
            page = _check(coinbase.parse_backfill(body, gap.symbol, now_us(), options))
            for t in page:
                if gap.first_id <= t.trade_id <= gap.last_id:
                    found[t.trade_id] = t
            if not page or page[0].trade_id <= gap.first_id:
                break
            before = page[0].trade_id
    elif gap.exchange == "kraken":
        since = gap.after_time_us
        for _ in range(MAX_PAGES):
            body = await _get(session, kraken.backfill_request(gap.symbol, since), rest_base)
            page = _check(kraken.parse_backfill(body, gap.symbol, now_us(), options))
            for t in page:
                if gap.first_id <= t.trade_id <= gap.last_id:
                    found[t.trade_id] = t
            if (
                not page
                or page[-1].trade_id >= gap.last_id
                or page[-1].event_time_us // 1_000_000 <= since // 1_000_000
            ):
                break
            since = page[-1].event_time_us
    else:
        raise BackfillError(f"no REST backfill for exchange {gap.exchange!r}")
    return [found[i] for i in sorted(found)]
