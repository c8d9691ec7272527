"""The PyFlink gateway JVM is started once per process: give it the Hadoop classes the
Iceberg catalog needs before any test creates an environment."""

from jobs.flink_env import hadoop_on_gateway_classpath

hadoop_on_gateway_classpath()
