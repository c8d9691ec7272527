"""Sample series for every PrometheusRule alert of the chart: for each alert, cases where it
fires (with the labels and templated annotations it must fire with) and cases where it stays
quiet. tests/deploy/test_alert_rules.py renders the chart, takes the rules from it and
evaluates them on these cases with `promtool test rules`.

Adding an alert to the chart: add one `Alert(...)` here, with at least one firing and one
quiet case; the test fails for any alert without both. Series are promtool's notation
(`series`, `values` such as '0+1x30': start 0, +1 per step, 30 steps; steps are 1m), and
the times are offsets from the start of the series. `ns()` adds the release namespace,
which every rule selects on. Thresholds come from the chart's values (`v`), so a changed
default moves the cases with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "candleflow"


def ns(metric: str, **labels: str) -> str:
    """`metric{namespace="candleflow",k="v",...}`."""
    parts = [f'namespace="{NAMESPACE}"', *(f'{k}="{v}"' for k, v in labels.items())]
    return f"{metric}{{{','.join(parts)}}}"


@dataclass(frozen=True)
class Case:
    series: list[tuple[str, str]]  # (series, values)
    at: str  # evaluation time, e.g. "20m"
    # For a firing case: the labels the alert carries beyond the rule's own (severity, slo),
    # one dict per alert instance, and the annotations that hold Prometheus templates.
    alerts: list[dict[str, str]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    name: str
    fires: list[Case]
    quiet: list[Case]


def behind(seconds: int) -> int:
    """A watermark (ms) this many seconds behind time() at the series' start."""
    return seconds * 1000


def cases(v: dict[str, Any]) -> list[Alert]:
    """Every alert's cases, for the chart values `v` (values.yaml)."""
    r = v["monitoring"]["prometheusRule"]
    fresh, lag, dlq = r["candleFreshnessSeconds"], r["consumerLagRecords"], r["dlqRatePerSecond"]
    budget = r["explainerBudgetFraction"] * v["explainer"]["usdPerDay"]
    stale = r["checkStaleSeconds"]
    wm = "flink_taskmanager_job_task_operator_currentOutputWatermark"
    pending = "flink_taskmanager_job_task_operator_pendingRecords"
    out = "flink_taskmanager_job_task_operator_numRecordsOut"
    failed = "flink_jobmanager_job_numberOfFailedCheckpoints"
    commit_failed = "flink_taskmanager_job_task_operator_failedCommittables"
    committer = {"job_name": "candles", "operator_name": "candles_sink_0[8]: Committer"}
    uptime = "flink_jobmanager_job_uptime"
    cost = "candleflow_explainer_llm_cost_usd_total"
    exhausted = "candleflow_explainer_budget_exhausted_total"
    delivery = "candleflow_ingest_delivery_failed_total"
    gaps = "candleflow_ingest_gap_trades_unfillable_total"
    violations = "candleflow_check_violations"
    checked = "candleflow_check_last_success_timestamp_seconds"
    late_op = "late_sink__writer"
    mismatch = "candleflow_reconcile_mismatches_total"
    fetch = "candleflow_reconcile_fetch_events_total"
    market = {"exchange": "binance", "symbol": "BTC-USDT", "interval": "1m"}
    differs = "differs from the exchange's own candle"
    per_min = dlq * 60  # the DLQ threshold as records per 1m step
    return [
        # First in the list (not appended) so it merges beside other branches' new alerts.
        Alert(
            "CandleflowReconcileMismatch",
            # candleflow verify live counted a wrong close in the last 30 minutes...
            fires=[
                Case(
                    [(ns(mismatch, **market, field="close"), "0 0 0 1x20")],
                    "10m",
                    [{**market, "field": "close"}],
                    {"summary": f"binance:BTC-USDT 1m: close {differs}"},
                )
            ],
            quiet=[
                # ...not when the last one is older than that,
                Case([(ns(mismatch, **market, field="close"), "0 0 1x60")], "50m"),
                # nor during an outage or rate limiting: those are fetch events, never
                # mismatches (the series sit at 0 from the start).
                Case(
                    [
                        (ns(mismatch, **market, field="close"), "0x40"),
                        (ns(fetch, exchange="binance", event="rate_limited"), "0+3x40"),
                        (ns(fetch, exchange="binance", event="unavailable"), "0+1x40"),
                    ],
                    "30m",
                ),
            ],
        ),
        Alert(
            "CandleflowCandlesStale",
            # The watermark (ms) advances with time() but trails it by more than `fresh` s,
            # for longer than the rule's 5m...
            fires=[
                Case(
                    [
                        (
                            ns(wm, job_name="candles", task_name="t"),
                            f"{-behind(fresh + 60)}+60000x40",
                        )
                    ],
                    "30m",
                    [{"job_name": "candles"}],
                )
            ],
            # ...or by less than that.
            quiet=[
                Case(
                    [
                        (
                            ns(wm, job_name="candles", task_name="t"),
                            f"{-behind(fresh - 60)}+60000x40",
                        )
                    ],
                    "30m",
                )
            ],
        ),
        Alert(
            "CandleflowConsumerLag",
            fires=[
                Case(
                    [(ns(pending, job_name="candles"), f"{lag + 1}x30")],
                    "20m",
                    [{"job_name": "candles"}],
                    {"summary": f"Flink job candles is {lag + 1} records behind Kafka"},
                )
            ],
            quiet=[Case([(ns(pending, job_name="candles"), f"{lag}x30")], "20m")],
        ),
        Alert(
            "CandleflowDLQRate",
            fires=[
                Case(
                    [(ns(out, job_name="candles", operator_name=late_op), f"0+{2 * per_min}x40")],
                    "30m",
                    [{}],
                )
            ],
            quiet=[
                Case(
                    [(ns(out, job_name="candles", operator_name=late_op), f"0+{per_min // 2}x40")],
                    "30m",
                ),
                # Records out of another operator are not the DLQ.
                Case(
                    [
                        (
                            ns(out, job_name="candles", operator_name="candle_sink__writer"),
                            f"0+{2 * per_min}x40",
                        )
                    ],
                    "30m",
                ),
            ],
        ),
        Alert(
            "CandleflowCheckpointFailures",
            fires=[
                Case(
                    [(ns(failed, job_name="candles"), "0+1x60")],
                    "40m",
                    [{"namespace": NAMESPACE, "job_name": "candles"}],
                    {"summary": "Checkpoints of candles are failing"},
                )
            ],
            quiet=[Case([(ns(failed, job_name="candles"), "3x60")], "40m")],
        ),
        Alert(
            "CandleflowSinkCommitFailed",
            fires=[
                # A running task attempt's counter goes up...
                Case(
                    [(ns(commit_failed, **committer, task_attempt_num="0"), "0x10 1x10")],
                    "15m",
                    [committer],
                    {
                        "summary": "candles: candles_sink_0[8]: Committer failed to commit a "
                        "checkpoint's records; they are not in the output"
                    },
                ),
                # ...or a restored attempt's counter starts above 0 (its first commit, of the
                # restored transactions, failed before the first scrape), the old one is gone.
                Case(
                    [
                        (ns(commit_failed, **committer, task_attempt_num="0"), "0x10"),
                        (ns(commit_failed, **committer, task_attempt_num="1"), "_x12 1x10"),
                    ],
                    "16m",
                    [committer],
                    {
                        "summary": "candles: candles_sink_0[8]: Committer failed to commit a "
                        "checkpoint's records; they are not in the output"
                    },
                ),
            ],
            quiet=[
                # Every commit succeeded, also across a restart (a new attempt at 0)...
                Case(
                    [
                        (ns(commit_failed, **committer, task_attempt_num="0"), "0x10"),
                        (ns(commit_failed, **committer, task_attempt_num="1"), "_x12 0x10"),
                    ],
                    "16m",
                ),
                # ...or the failure is older than 15 minutes (it fired then).
                Case([(ns(commit_failed, **committer, task_attempt_num="0"), "0x5 1x40")], "40m"),
            ],
        ),
        Alert(
            "CandleflowJobNotRunning",
            fires=[
                Case([(ns(uptime, job_name="candles"), "0x20")], "10m", [{"job_name": "candles"}]),
                # No candles job at all: absent() carries the selector's equality labels.
                Case(
                    [(ns(uptime, job_name="anomalies"), "0+60000x20")],
                    "10m",
                    [{"namespace": NAMESPACE, "job_name": "candles"}],
                ),
            ],
            quiet=[Case([(ns(uptime, job_name="candles"), "0+60000x20")], "10m")],
        ),
        Alert(
            "CandleflowExplainerBudget",
            fires=[
                Case([(ns(cost, pod="explainer-0"), f"0+{budget / 60 * 1.5}x120")], "100m", [{}])
            ],
            quiet=[Case([(ns(cost, pod="explainer-0"), f"0+{budget / 60 / 2}x120")], "100m")],
        ),
        Alert(
            "CandleflowExplainerBudgetExhausted",
            fires=[
                Case(
                    [(ns(exhausted, window="day"), "0 0 1 1 1")],
                    "4m",
                    [{"namespace": NAMESPACE, "window": "day"}],
                )
            ],
            quiet=[Case([(ns(exhausted, window="day"), "1x90")], "80m")],
        ),
        Alert(
            "CandleflowIngestDeliveryFailures",
            fires=[
                Case(
                    [(ns(delivery, pod="ingest-binance-0"), "0+5x20")],
                    "15m",
                    [{"pod": "ingest-binance-0"}],
                    {"summary": "Ingest pod ingest-binance-0 cannot deliver trades to Kafka"},
                )
            ],
            quiet=[Case([(ns(delivery, pod="ingest-binance-0"), "2x20")], "15m")],
        ),
        Alert(
            "CandleflowIngestGapsUnfillable",
            fires=[
                Case(
                    [(ns(gaps, exchange="kraken", pod="ingest-kraken-0"), "0 0 0 7x10")],
                    "5m",
                    [{"exchange": "kraken"}],
                    {"summary": "kraken: trade ids missing that REST backfill could not return"},
                )
            ],
            quiet=[Case([(ns(gaps, exchange="kraken", pod="ingest-kraken-0"), "7x60")], "50m")],
        ),
        Alert(
            "CandleflowInvariantViolated",
            fires=[
                Case(
                    [
                        (ns(violations, invariant="volume", pod="check-0"), "0 0 2x10"),
                        (ns(violations, invariant="ohlc", pod="check-0"), "0x12"),
                    ],
                    "6m",
                    [{"invariant": "volume"}],
                    {"summary": "2 published window(s) break the volume invariant"},
                )
            ],
            quiet=[
                Case([(ns(violations, invariant="volume", pod="check-0"), "0x12")], "10m"),
                # One check's violation, gone at the next (a window still being corrected).
                Case([(ns(violations, invariant="volume", pod="check-0"), "0 3 0x10")], "6m"),
            ],
        ),
        Alert(
            "CandleflowCheckNotRunning",
            fires=[
                # The last completed check is at 0 s; time() runs on past the threshold.
                Case([(ns(checked, pod="check-0"), "0x60")], f"{stale // 60 + 10}m", [{}]),
                # No checker at all.
                Case(
                    [(ns(violations, invariant="ohlc", pod="check-0"), "0x20")],
                    "10m",
                    [{"namespace": NAMESPACE}],
                ),
            ],
            # A check completes every minute (its Unix time, in s, as the value).
            quiet=[Case([(ns(checked, pod="check-0"), "0+60x60")], f"{stale // 60 + 10}m")],
        ),
    ]
