"""PyFlink reads HADOOP_CLASSPATH once, when its JVM starts: set it at collection time, before
any test of the session creates a Flink environment (the Iceberg catalog needs Hadoop)."""

from __future__ import annotations

from devstack.testing import stack_test_settings
from jobs.flink_env import hadoop_on_gateway_classpath

hadoop_on_gateway_classpath(stack_test_settings())
