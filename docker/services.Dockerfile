# syntax=docker/dockerfile:1.7
# Candleflow services image: ingest (one pod per exchange), the gRPC MarketData service and
# the explainer, all through the `candleflow` command. Build: docker/README.md.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE}
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/candleflow/venv \
    PATH=/opt/candleflow/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 9999 candleflow \
 && useradd --system --uid 9999 --gid 9999 --home-dir /opt/candleflow --shell /usr/sbin/nologin candleflow \
 && uv venv --python /usr/local/bin/python3.11 /opt/candleflow/venv
WORKDIR /opt/candleflow
COPY requirements.lock pyproject.toml ./
RUN uv pip sync --no-cache requirements.lock
COPY candleflow/ candleflow/
COPY adapters/ adapters/
COPY devstack/ devstack/
COPY verify/ verify/
COPY explainer/ explainer/
COPY ingest/ ingest/
COPY serving/ serving/
COPY verify/ verify/
COPY jobs/ jobs/
COPY proto/ proto/
# The protobuf stubs are checked in (serving/market_data_pb2.py): importing them checks the runtime.
RUN uv pip install --no-cache --no-deps -e . \
 && python -c "import serving.pb" \
 && chown -R candleflow:candleflow /opt/candleflow
USER 9999:9999
EXPOSE 50051 9463 9464 9465
ENTRYPOINT ["candleflow"]
CMD ["--help"]
