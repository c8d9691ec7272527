"""The candles job as its own process (in-process MiniCluster), for the fault test: the test
SIGKILLs this process mid-stream and starts it again from the latest retained checkpoint.

python -m tests.jobs.fault_runner TRADES CANDLES LATE NAMESPACE CKPT_DIR [RESTORE_PATH]
"""

from __future__ import annotations

import sys

from candleflow import catalog
from candleflow.config import CandleSettings
from candleflow.testing import stack_test_settings
from jobs.candle_tables import IcebergSink, KafkaSink, KafkaSource, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

SETTINGS = CandleSettings(intervals="1m,5m", allowed_lateness_seconds=120)


def main() -> None:
    trades, candles, late, ns, ckpt = sys.argv[1:6]
    restore = sys.argv[6] if len(sys.argv) > 6 else None
    s = stack_test_settings()
    config = CandleJobConfig(
        source=KafkaSource(
            trades,
            s.bootstrap_servers,
            s.registry_url,
            startup_mode="earliest-offset",
            group_id=f"{trades}-job",
        ),
        sinks=Sinks(
            candles=[
                KafkaSink(candles, "candle", s.bootstrap_servers, s.registry_url, f"{candles}-tx"),
                IcebergSink(s.catalog_name, ns, "candles"),
            ],
            late=[KafkaSink(late, "late_trade", s.bootstrap_servers, s.registry_url, f"{late}-tx")],
            trades=[IcebergSink(s.catalog_name, ns, "trades")],
        ),
        candles=SETTINGS,
        catalog_ddl=[catalog.flink_catalog_ddl(s)],
    )
    extra = {"execution.state-recovery.path": restore} if restore else {}
    t_env = make_table_env(
        parallelism=1,
        checkpoint_interval_ms=1000,
        connectors=True,
        stack=s,
        checkpoint_dir=ckpt,
        extra=extra,
    )
    build(t_env, config).execute().wait()  # this process is the job: it runs until killed


if __name__ == "__main__":
    main()
