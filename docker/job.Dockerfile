# syntax=docker/dockerfile:1.7
# Candleflow job image: Flink 2.1.3 (Java 17) + Python 3.11 + PyFlink + the project's jobs,
# the Java UDF jar and the connector jars. Run by the Flink Kubernetes Operator
# (FlinkDeployment, PythonDriver -pym jobs.<name>). Build: docker/README.md
# (scripts/docker_context.sh stages build/docker/ first).
ARG FLINK_IMAGE=flink:2.1.3-scala_2.12-java17
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${FLINK_IMAGE}
USER root
# Python 3.11 from uv's standalone builds (the base's distribution ships another version);
# one venv holds PyFlink and the project, locked by requirements.lock.
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/candleflow/venv \
    CANDLEFLOW_CACHE=/opt/candleflow/cache \
    PATH=/opt/candleflow/venv/bin:$PATH
RUN uv python install 3.11.14 \
 && uv venv --python 3.11.14 /opt/candleflow/venv
WORKDIR /opt/candleflow
COPY requirements.lock pyproject.toml ./
RUN uv pip sync --no-cache requirements.lock
COPY candleflow/ candleflow/
COPY adapters/ adapters/
COPY devstack/ devstack/
COPY verify/ verify/
COPY explainer/ explainer/
COPY jobs/ jobs/
COPY ingest/ ingest/
COPY serving/ serving/
COPY verify/ verify/
# Editable install: jobs/flink_env.py finds the UDF jar relative to the source tree.
RUN uv pip install --no-cache --no-deps -e .
COPY udfs/target/candleflow-udfs.jar udfs/target/candleflow-udfs.jar
# Connector jars (Kafka, Avro registry, Iceberg, JDBC drivers) where the jobs look for them
# ($CANDLEFLOW_CACHE/jars/flink); Hadoop's client jars also on Flink's own classpath, which
# Iceberg's catalog needs in the JobManager.
COPY build/docker/flink-jars/ /opt/candleflow/cache/jars/flink/
COPY build/docker/hadoop-jars/ /opt/flink/lib/
RUN chown -R flink:flink /opt/candleflow \
 && test -f /opt/flink/opt/flink-python-2.1.3.jar
# The official image's user (uid 9999); the chart's podSecurityContext matches it.
USER flink
# ENTRYPOINT stays the base image's /docker-entrypoint.sh: the operator drives it.
