"""`candleflow verify live`: options override the CANDLEFLOW_VERIFY_* environment."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def live(
    markets: Annotated[
        str | None, typer.Option(help="EXCHANGE:SYMBOL,... e.g. binance:BTC-USDT,kraken:BTC-USD")
    ] = None,
    intervals: Annotated[str | None, typer.Option(help="e.g. 1m,5m,15m,1h")] = None,
    settle_seconds: Annotated[
        float | None, typer.Option(help="check a window once it closed this long ago")
    ] = None,
    cycle_seconds: Annotated[float | None, typer.Option(help="seconds between cycles")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="port of /metrics and /healthz (0: any free port)")
    ] = None,
    binance_spot_url: Annotated[str | None, typer.Option(help="Binance spot REST base")] = None,
    binance_coinm_url: Annotated[str | None, typer.Option(help="Binance COIN-M REST base")] = None,
    coinbase_url: Annotated[str | None, typer.Option(help="Coinbase REST base")] = None,
    kraken_url: Annotated[str | None, typer.Option(help="Kraken REST base")] = None,
) -> None:
    """Compare candles.v1 (read_committed) with each market's own exchange candles, window
    by window once settled; mismatches go to reconcile.v1, counts to /metrics. Runs until
    SIGTERM."""
    from verify.service import main
    from verify.settings import VerifySettings

    given: dict[str, Any] = {
        k: v
        for k, v in {
            "markets": markets,
            "intervals": intervals,
            "settle_seconds": settle_seconds,
            "cycle_seconds": cycle_seconds,
            "metrics_port": metrics_port,
            "binance_spot_url": binance_spot_url,
            "binance_coinm_url": binance_coinm_url,
            "coinbase_url": coinbase_url,
            "kraken_url": kraken_url,
        }.items()
        if v is not None
    }
    main(VerifySettings(**given))
