"""Operator uids of the candles and bronze jobs: every operator has one, it names what the
operator is, and it does not depend on what else the graph holds or how often this JVM planned
before (Flink SQL's own ids come from a node counter that does both). The savepoint side is
tests/jobs/test_upgrade.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from candleflow.config import CandleSettings
from jobs import bronze
from jobs.candle_tables import FileSink, FileSource, Sinks
from jobs.candles import PTF_UID, CandleJobConfig, build
from jobs.flink_env import make_table_env
from jobs.operator_uids import PIPELINE, assign_uids, translate

pytestmark = pytest.mark.flink


def plan(tmp_path: Path, *, late: bool = True) -> dict[str, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "trades.csv").touch()
    config = CandleJobConfig(
        source=FileSource(tmp_path / "trades.csv"),
        sinks=Sinks(
            candles=[FileSink(tmp_path / "candles")],
            late=[FileSink(tmp_path / "late")] if late else [],
        ),
        candles=CandleSettings(intervals="1m,5m"),
    )
    t_env = make_table_env(parallelism=1)
    return _all_uids(t_env, build(t_env, config))


def _all_uids(t_env, statements) -> dict[str, str]:
    transformations, uids = translate(t_env, statements)
    # Every operator (not the partition edges) now has its uid.
    missing = []

    def walk(t) -> None:
        if not t.getUid() and t.getClass().getSimpleName() != "PartitionTransformation":
            missing.append(t.getName())
        for parent in t.getInputs():
            walk(parent)

    for sink in transformations:
        walk(sink)
    assert not missing, missing
    return uids


def test_every_operator_named_by_what_it_is(tmp_path: Path) -> None:
    uids = plan(tmp_path)
    assert uids[PTF_UID].startswith("ProcessTableFunction")
    assert uids[f"{PIPELINE}/trades_src"].startswith("trades_src[")
    for sink in ("candles_sink_0", "late_sink_0"):  # the sink tables
        assert uids[sink] == "end"  # (the filesystem sink's last operator)
        assert uids[f"{sink}/StreamingFileWriter"] == "StreamingFileWriter"
    # Nothing carries the planner's node numbers.
    assert not [u for u in uids if "[" in u], uids


def test_uids_do_not_depend_on_the_rest_of_the_graph_or_earlier_plannings(
    tmp_path: Path,
) -> None:
    full = plan(tmp_path / "a")
    again = plan(tmp_path / "b")  # same JVM: the planner's counter moved on
    assert set(again) == set(full)
    fewer = plan(tmp_path / "c", late=False)  # one output less
    assert set(fewer) == {u for u in full if not u.startswith("late_sink_0")}


def test_bronze_job_operators_named_by_what_they_are(tmp_path: Path) -> None:
    """The bronze job's dedup state lives under the PTF's own uid, the source upstream of it
    under `pipeline/`: a savepoint restores into the next version of the job whatever else
    changed around it."""
    (tmp_path / "trades.csv").touch()
    config = bronze.BronzeJobConfig(
        source=FileSource(tmp_path / "trades.csv"), sink=FileSink(tmp_path / "bronze")
    )
    t_env = make_table_env(parallelism=1)
    uids = _all_uids(t_env, bronze.build(t_env, config))
    assert uids["bronze_sink"] == "end"
    # The stateful ones: the dedup memory and the source's offsets/splits.
    assert bronze.DEDUP_UID in uids
    assert uids["pipeline/trades_src"].startswith("trades_src[")
    assert not [u for u in uids if "[" in u], uids


def test_a_repeated_uid_is_refused() -> None:
    class Op:  # a transformation as py4j shows it
        def __init__(self, name: str, uid: str | None, inputs: list) -> None:
            self.name, self.uid, self.inputs = name, uid, inputs

        def getId(self) -> int:  # noqa: N802 - Java's names
            return id(self)

        def getUid(self) -> str | None:  # noqa: N802
            return self.uid

        def setUid(self, uid: str) -> None:  # noqa: N802
            self.uid = uid

        def getName(self) -> str:  # noqa: N802
            return self.name

        def getInputs(self) -> list:  # noqa: N802
            return self.inputs

        def getClass(self):  # noqa: N802
            return type("OneInputTransformation", (), {"getSimpleName": lambda _: "X"})()

    shared = Op("Source[1]", None, [])
    with pytest.raises(ValueError, match="share the uid 'taken'"):
        assign_uids([Op("a[3]", "taken", [shared]), Op("b[4]", "taken", [shared])], ["a", "b"])
