"""A minimal stateful job with a `main()`, run through the chart's exact PythonDriver
arguments (module swapped by `--set flink.jobs.candles.module=...`) to prove the submit /
stop-with-savepoint / restart machinery of test_savepoint_upgrade.py independently of the
candles job. Kafka (JSON ids) -> exactly-once Kafka; its state is the source offsets."""

from __future__ import annotations

import os

from pyflink.table import EnvironmentSettings, TableEnvironment


def main() -> None:
    src, dst = os.environ["CANDLEFLOW_TOPIC_TRADES"], os.environ["CANDLEFLOW_TOPIC_CANDLES"]
    bootstrap = os.environ["CANDLEFLOW_KAFKA_BOOTSTRAP"]
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.execute_sql(f"""CREATE TABLE src (id BIGINT) WITH (
        'connector' = 'kafka', 'topic' = '{src}', 'properties.bootstrap.servers' = '{bootstrap}',
        'properties.group.id' = '{src}-probe', 'scan.startup.mode' = 'earliest-offset',
        'format' = 'json')""")
    t_env.execute_sql(f"""CREATE TABLE dst (id BIGINT) WITH (
        'connector' = 'kafka', 'topic' = '{dst}', 'properties.bootstrap.servers' = '{bootstrap}',
        'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once',
        'sink.transactional-id-prefix' = '{dst}',
        'properties.transaction.timeout.ms' = '900000')""")
    # uid-stable plan: the same SQL gives the same operator ids on restart.
    t_env.execute_sql("INSERT INTO dst SELECT id FROM src")


if __name__ == "__main__":
    main()
