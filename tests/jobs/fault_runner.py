"""The candles job as its own process (in-process MiniCluster), for the fault test: the test
SIGKILLs this process mid-stream and starts it again from the latest retained checkpoint.

python -m tests.jobs.fault_runner TRADES CANDLES LATE NAMESPACE CKPT_DIR [RESTORE_PATH]
"""

from __future__ import annotations

import sys

from candleflow.config import CandleSettings
from devstack.testing import stack_test_settings
from jobs.candles import run
from tests.jobs.harness import job_config_for, stack_table_env

SETTINGS = CandleSettings(intervals="1m,5m", allowed_lateness_seconds=120)


def main() -> None:
    trades, candles, late, ns, ckpt = sys.argv[1:6]
    restore = sys.argv[6] if len(sys.argv) > 6 else None
    s = stack_test_settings()
    config = job_config_for(s, trades, candles, late, ns, SETTINGS, bounded=False)
    extra = {"execution.state-recovery.path": restore} if restore else {}
    t_env = stack_table_env(s, ckpt, checkpoint_interval_ms=1000, extra=extra)
    run(t_env, config).wait()  # this process is the job: it runs until killed


if __name__ == "__main__":
    main()
