"""Stable operator uids for a Table API job, so its savepoints survive upgrades.

Flink files each operator's state under the operator's uid. Flink SQL sets none by default;
its generated ids come from the shape of the whole graph (an added sink or filter renames the
source and the sinks), and `table.exec.uid.generation=ALWAYS` numbers nodes with a counter
that keeps counting across plannings in one JVM. Iceberg's SQL sink sets none at all. So a
savepoint of the candles job would only restore into exactly the same graph.

Here the job's statements are translated, every operator without a uid is given one that
names what it is, not where it sits, and the job is submitted through the table
environment's own executor (as `StatementSet.execute()` does, PyFlink's Python-operator
chaining included):

    <table>              the sink (a Kafka sink's writer and committer derive theirs from it)
    <table>/<operator>   operators that feed one sink only: the Iceberg writer and files
                         committer (named by the sink's table, so a committer's state never
                         moves to another table)
    pipeline/<operator>  everything upstream of an operator that already has a uid (the
                         candle PTF's `candles-ptf-v2`): the Kafka source and its calcs

`<operator>` is the planner's name without its node number ("Calc[7]" -> "Calc"); a name
repeated within one owner gets "#2", "#3" in the order met walking up from the sink.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from pyflink.common import JobClient
from pyflink.table import StatementSet, TableEnvironment
from pyflink.util.java_utils import get_field_value

PIPELINE = "pipeline"
_DEFAULT_PATH = "default_catalog.default_database."
_NODE_NUMBER = re.compile(r"\[\d+\]")
# A partition is an edge, not an operator: it has no state and Flink ignores its uid.
_EDGES = {"PartitionTransformation"}


def operator_name(transformation: Any) -> str:
    return _NODE_NUMBER.sub("", transformation.getName()).strip()


def table_name(operation: Any) -> str:
    """The sink table of a ModifyOperation; temporary tables without the default path."""
    name = str(operation.getContextResolvedTable().getIdentifier().asSummaryString())
    return name.removeprefix(_DEFAULT_PATH)


def assign_uids(transformations: Any, tables: list[str]) -> dict[str, str]:
    """Give every operator reachable from the sink `transformations` (Java list; the sink of
    `tables[i]` is `transformations[i]`) that has no uid a stable one (see the module doc);
    returns {uid: the planner's name} of all of them, preset ones included. Raises if two
    operators would share a uid."""
    if len(transformations) != len(tables):
        raise ValueError(f"{len(transformations)} sink transformations for {len(tables)} sinks")
    assigned: dict[str, str] = {}
    done: set[int] = set()
    per_owner: defaultdict[str, int] = defaultdict(int)

    def visit(t: Any, owner: str, is_sink: bool = False) -> None:
        if t.getId() in done:
            return
        done.add(t.getId())
        preset = t.getUid()
        if preset:
            owner = PIPELINE  # what feeds an operator with its own uid is shared
            _claim(assigned, preset, t)
        elif t.getClass().getSimpleName() not in _EDGES:
            name = operator_name(t)
            key = owner if is_sink else f"{owner}/{name}"
            per_owner[key] += 1
            uid = key if per_owner[key] == 1 else f"{key}#{per_owner[key]}"
            t.setUid(uid)
            _claim(assigned, uid, t)
        for parent in t.getInputs():
            visit(parent, owner)

    for sink, table in zip(transformations, tables, strict=True):
        visit(sink, table, is_sink=True)
    return assigned


def _claim(assigned: dict[str, str], uid: str, t: Any) -> None:
    if uid in assigned:
        raise ValueError(
            f"two operators would share the uid {uid!r}: {assigned[uid]}, {t.getName()}"
        )
    assigned[uid] = t.getName()


class SubmittedJob:
    """What `StatementSet.execute()` returns, for the parts the callers use."""

    def __init__(self, client: JobClient, uids: dict[str, str]) -> None:
        self._client = client
        self.uids = uids

    def get_job_client(self) -> JobClient:
        return self._client

    def wait(self, timeout_ms: int | None = None) -> None:
        """Until the job ends; raises (a Py4JJavaError) if it failed, or (wrapping a
        TimeoutException) if it has not ended within `timeout_ms`."""
        result = self._client._j_job_client.getJobExecutionResult()
        if timeout_ms is None:
            result.get()
            return
        from pyflink.java_gateway import get_gateway

        result.get(timeout_ms, get_gateway().jvm.java.util.concurrent.TimeUnit.MILLISECONDS)


def translate(t_env: TableEnvironment, statements: StatementSet) -> tuple[Any, dict[str, str]]:
    """The statements' sink transformations (Java list), every operator under a stable uid;
    and {uid: the planner's name}."""
    operations = statements._j_statement_set.getOperations()
    transformations = _translate_on_this_thread(t_env, operations)
    return transformations, assign_uids(transformations, [table_name(op) for op in operations])


def _translate_on_this_thread(t_env: TableEnvironment, operations: Any) -> Any:
    """The planner's translation, with Calcite's metadata provider set on the Java thread
    that runs it.

    Calcite keeps that provider in a thread-local, set when the planner's RelOptCluster gets
    its provider: once, on the Java thread that created the TableEnvironment. PyFlink's py4j
    client runs each call on one of a pool of Java threads, and a Python thread's calls move
    to another one whenever another Python thread (a py4j garbage-collection finaliser, a
    background loop) used the pool meanwhile: the translation then failed with
    "NullPointerException: metadataHandlerProvider". So set the provider again right before;
    the next call lands on the same Java thread unless another thread interleaves once more,
    in which case it is set and tried again."""
    from py4j.protocol import Py4JJavaError

    planner = t_env._j_tenv.getPlanner()
    cluster = planner.plannerContext().getCluster()
    for attempt in range(1, 6):
        cluster.setMetadataProvider(cluster.getMetadataProvider())
        try:
            return planner.translate(operations)
        except Py4JJavaError as e:
            if "metadataHandlerProvider" not in str(e.java_exception) or attempt == 5:
                raise
    raise AssertionError("unreachable")


def execute(t_env: TableEnvironment, statements: StatementSet) -> SubmittedJob:
    """`statements.execute()`, with stable uids on every operator."""
    t_env._before_execute()  # PyFlink: pipeline.jars/classpaths into the executor's config
    j_tenv = t_env._j_tenv
    transformations, uids = translate(t_env, statements)
    # The executor TableEnvironmentImpl.executeInternal uses (PyFlink reads it the same way
    # to install its chaining of Python operators); the job name comes from pipeline.name.
    executor = get_field_value(j_tenv, "execEnv")
    pipeline = executor.createPipeline(transformations, j_tenv.getConfig(), None)
    return SubmittedJob(JobClient(executor.executeAsync(pipeline)), uids)
