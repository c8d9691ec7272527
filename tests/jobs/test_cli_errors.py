"""The one-line messages `jobs run candles --from-savepoint` prints for a refused restore,
from the Java errors Flink raises (texts as Flink 2.1 writes them)."""

from __future__ import annotations

from jobs.cli import java_cause, restore_error

UNMAPPED = """An error occurred while calling o330.executeAsync.
: java.util.concurrent.ExecutionException: org.apache.flink.runtime.client.JobSubmissionException
\tat java.base/java.util.concurrent.CompletableFuture.reportGet(CompletableFuture.java:396)
Caused by: java.lang.IllegalStateException: Failed to rollback to checkpoint/savepoint file:/sp/savepoint-1. Cannot map checkpoint/savepoint state for operator 4a2b56ba7d5cbb7e4bf6c16e8e7405f8 to the new program, because the operator is not available in the new program. If you want to allow to skip this, you can set the --allowNonRestoredState option on the CLI.
\tat org.apache.flink.runtime.checkpoint.Checkpoints.throwNonRestoredStateException(Checkpoints.java:246)
"""  # noqa: E501 - Flink's own line

MISSING = """An error occurred while calling o330.executeAsync.
Caused by: java.lang.RuntimeException: java.io.FileNotFoundException: Cannot find it
Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory 'file:/x' on file system 'file'.
\tat org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess.resolveCheckpointPointer(AbstractFsCheckpointStorageAccess.java:282)
"""  # noqa: E501


def test_left_over_state_names_the_operator_and_what_to_do() -> None:
    message = restore_error("file:/sp/savepoint-1", Exception(UNMAPPED))
    assert message.startswith(
        "file:/sp/savepoint-1 holds state of operator 4a2b56ba7d5cbb7e4bf6c16e8e7405f8, "
    )
    assert "an output removed" in message and "docs/operations.md" in message


def test_other_errors_give_the_innermost_cause() -> None:
    assert java_cause(Exception(MISSING)) == (
        "FileNotFoundException: Cannot find checkpoint or savepoint file/directory 'file:/x' "
        "on file system 'file'."
    )
    assert restore_error("file:/x", Exception(MISSING)).startswith(
        "cannot restore from file:/x: FileNotFoundException: Cannot find checkpoint"
    )
    assert java_cause(Exception("no java trace here\nsecond line")) == "no java trace here"
