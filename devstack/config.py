"""Configuration files the local stack writes into <data_dir>/conf on every `up`."""

from __future__ import annotations

from pathlib import Path

from candleflow.config import StackSettings


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_properties(
    s: StackSettings, data: Path, plain_users: dict[str, str], tls_keystore: Path
) -> str:
    """server.properties. `plain_users` (name -> password) may log in with SASL/PLAIN on the
    SASL_PLAINTEXT and SASL_SSL listeners; SCRAM users are credentials in the cluster
    metadata (Admin API). `tls_keystore` is the SASL_SSL listener's PEM file (unencrypted
    PKCS#8 key + certificate chain). The file holds the passwords: the stack writes it
    readable by its owner only."""
    users = " ".join(f"user_{u}={_jaas_quote(p)}" for u, p in sorted(plain_users.items()))
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    sasl = f"SASL_PLAINTEXT://{s.host}:{s.kafka_sasl_port}"
    sasl_ssl = f"SASL_SSL://{s.host}:{s.kafka_sasl_ssl_port}"
    controller = f"CONTROLLER://{s.host}:{s.kafka_controller_port}"
    return f"""# written by candleflow stack up; edit devstack/stack.py instead
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}
listeners=PLAINTEXT://{s.host}:{s.kafka_port},{sasl},{sasl_ssl},{controller}
advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port},{sasl},{sasl_ssl}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
# The SASL listeners (clients only; brokers and the controller talk PLAINTEXT).
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config={plain} required {users};
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={scram} required;
# SASL_SSL: the same users over TLS (the production protocol). The server certificate is
# signed by the stack's own CA (conf/kafka/tls/ca.pem) for 127.0.0.1 and localhost.
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_ssl.plain.sasl.jaas.config={plain} required {users};
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram} required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={tls_keystore}
listener.name.sasl_ssl.ssl.client.auth=none
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
# Flink's exactly-once Kafka sinks use transaction timeouts up to an hour; the broker's
# maximum must be above that or the sink fails at start.
transaction.max.timeout.ms=3600000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created explicitly (partitions, retention, cleanup) by the stack and tests.
auto.create.topics.enable=false
log.retention.hours=168
log.segment.bytes=104857600
log.retention.check.interval.ms=60000
"""


def flink_config(s: StackSettings, rpc_port: int, python: str, mark: str) -> str:
    # Flink's default JVM options (add-opens for Java 17) plus our process marker.
    opts = (
        "-XX:+IgnoreUnrecognizedVMOptions "
        "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED "
        "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED "
        "--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED "
        "--add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED "
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
        "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED "
        "--add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED "
        "--add-opens=java.base/java.util=ALL-UNNAMED "
        "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
        "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
        f"--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED {mark}"
    )
    data = s.data_dir / "flink"
    return f"""# written by candleflow stack up; edit devstack/stack.py instead
env.java.opts.all: "{opts}"
jobmanager.bind-host: {s.host}
jobmanager.rpc.address: {s.host}
jobmanager.rpc.port: {rpc_port}
jobmanager.memory.process.size: 1024m
jobmanager.execution.failover-strategy: region
taskmanager.bind-host: {s.host}
taskmanager.host: {s.host}
taskmanager.numberOfTaskSlots: 4
taskmanager.memory.process.size: 2560m
taskmanager.memory.managed.fraction: 0.2
parallelism.default: 1
rest.address: {s.host}
rest.bind-address: {s.host}
rest.port: {s.flink_rest_port}
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0
io.tmp.dirs: {data / "tmp"}
state.checkpoints.dir: {(data / "checkpoints").as_uri()}
state.savepoints.dir: {(data / "savepoints").as_uri()}
execution.checkpointing.dir: {(data / "checkpoints").as_uri()}
execution.checkpointing.savepoint-dir: {(data / "savepoints").as_uri()}
python.executable: {python}
python.client.executable: {python}
"""


LOG4J2 = """# Kafka broker logs to stdout, which the stack writes to <data_dir>/logs/kafka.log
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
