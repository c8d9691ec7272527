"""The Spark peer's session: local[2] with the Kafka source and Avro jars from the cache.

Runs in the peers environment ($CANDLEFLOW_CACHE/peers-venv, `make setup-peers`), which
has pyspark; the project's environment imports only PACKAGES from here (pyspark is
imported lazily). `python -m bench.peers.spark_env --resolve DIR` has Spark's own resolver
(Ivy, `spark.jars.packages`) fetch the jars from Maven Central into DIR once; the bench
then puts DIR/jars/*.jar on the classpath, so a run needs no network.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

SPARK_VERSION = "3.5.7"  # = pyspark in bench/peers/requirements.txt
PACKAGES = (
    f"org.apache.spark:spark-sql-kafka-0-10_2.12:{SPARK_VERSION}",
    f"org.apache.spark:spark-avro_2.12:{SPARK_VERSION}",
)


def cache_dir() -> Path:
    return Path(os.environ.get("CANDLEFLOW_CACHE", Path.home() / ".cache" / "candleflow"))


def ivy_dir() -> Path:
    return cache_dir() / "peers-ivy"


def session(app: str, extra: dict[str, str] | None = None, *, resolve_into: Path | None = None):
    """A local[2] SparkSession; jars from the cache (or resolved into `resolve_into`)."""
    from pyspark.sql import SparkSession

    b = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        # local mode: 200 shuffle partitions would be 200 tiny tasks per micro-batch
        .config("spark.sql.shuffle.partitions", "2")
    )
    if resolve_into is not None:
        b = b.config("spark.jars.packages", ",".join(PACKAGES)).config(
            "spark.jars.ivy", str(resolve_into)
        )
    else:
        jars = sorted((ivy_dir() / "jars").glob("*.jar"))
        if not jars:
            raise SystemExit(f"no Spark jars in {ivy_dir()}/jars: run `make setup-peers`")
        b = b.config("spark.jars", ",".join(str(j) for j in jars))
    for k, v in (extra or {}).items():
        b = b.config(k, v)
    return b.getOrCreate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolve", type=Path, required=True, help="Ivy directory to resolve into")
    args = ap.parse_args()
    spark = session("resolve", resolve_into=args.resolve)
    spark.stop()


if __name__ == "__main__":
    main()
