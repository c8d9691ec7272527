"""The offline explainer: a deterministic plain-language explanation from the rule's numbers.

Used when no API key is set, when the budget is spent, and when the model's answer stays
malformed. Same anomaly, same text (created_at aside), always flagged offline=true.
"""

from __future__ import annotations

from candleflow import anomaly_rules as r
from candleflow.domain import Anomaly, Explanation
from explainer.context import utc

OFFLINE_MODEL = "offline"


def _f(details: dict[str, str], key: str, default: float = float("nan")) -> float:
    try:
        return float(details[key])
    except (KeyError, ValueError):
        return default


def describe(a: Anomaly) -> tuple[str, list[str]]:
    """(summary, key factors) for an anomaly, from its numbers only."""
    d, where = a.details, f"{a.symbol} on {a.exchange}"
    at = utc(a.window_start_us)
    if a.rule == r.VOLUME_SPIKE:
        samples = d.get("samples", "?")
        return (
            f"{where}: the {a.interval} volume at {at} was {_f(d, 'ratio'):.1f}x its "
            f"{samples}-candle average ({d.get('volume')} vs {_f(d, 'mean_volume'):.2f}).",
            [
                f"volume z-score {a.value:.1f} (threshold {a.threshold:g})",
                f"average over the previous {samples} non-empty candles",
            ],
        )
    if a.rule == r.PRICE_MOVE:
        return (
            f"{where}: the price moved {_f(d, 'pct_change'):+.2f}% in the {a.interval} candle "
            f"at {at}, from {d.get('previous_close')} to {d.get('close')}.",
            [
                f"absolute log-return z-score {a.value:.1f} (threshold {a.threshold:g})",
                f"typical absolute move {_f(d, 'mean_abs_log_return') * 100:.3f}%",
            ],
        )
    if a.rule == r.VOLATILITY_SPIKE:
        return (
            f"{where}: the {a.interval} candle at {at} spanned {_f(d, 'range_pct'):.3f}% from "
            f"low {d.get('low')} to high {d.get('high')}, against "
            f"{_f(d, 'mean_range_pct'):.3f}% on average.",
            [f"range z-score {a.value:.1f} (threshold {a.threshold:g})"],
        )
    if a.rule == r.GAP:
        start = int(d.get("run_start_us", a.window_start_us))
        return (
            f"{where}: no trades in {d.get('empty_windows')} {a.interval} windows in a row "
            f"since {utc(start)}; the last price was {d.get('last_close')}.",
            [f"{d.get('empty_windows')} empty windows (threshold {a.threshold:g})"],
        )
    if a.rule == r.CROSS_EXCHANGE_DIVERGENCE:
        hi, lo = d.get("high_exchange", "?"), d.get("low_exchange", "?")
        return (
            f"{a.symbol}: at {at} the {a.interval} close on {hi} ({d.get(f'close_{hi}')}) was "
            f"{_f(d, 'bps'):.0f} bps above {lo} ({d.get(f'close_{lo}')}).",
            [f"divergence {a.value:.1f} bps (threshold {a.threshold:g} bps)"],
        )
    return (f"{where}: rule {a.rule} fired at {at} with value {a.value:g}.", [])


def explain_offline(a: Anomaly, created_at_us: int, reason: str) -> Explanation:
    summary, factors = describe(a)
    caveats = [
        "Written offline from the rule's numbers, without a language model: it says what "
        "happened, not why.",
        f"offline reason: {reason}",
    ]
    return Explanation(
        anomaly_id=a.anomaly_id,
        summary=summary,
        key_factors=factors,
        confidence=1.0,
        caveats=caveats,
        model=OFFLINE_MODEL,
        offline=True,
        created_at_us=created_at_us,
    )
