"""Per-candle cost of the anomaly detectors on the real COIN-M day (1,440 1m candles):
the pure detector, and with the keyed-state pickle round trip the Flink job does per candle.

Run: PYTHONPATH=. .venv/bin/python bench/anomaly_detectors.py
"""

from __future__ import annotations

import pickle
import time

from candleflow.anomaly_rules import DetectorConfig, SeriesDetector
from devstack.candle_series import coinm_1m_candles


def main() -> None:
    candles = coinm_1m_candles()
    cfg = DetectorConfig()
    for label, with_state in (("detector only", False), ("detector + state round trip", True)):
        det = SeriesDetector("binance", "BTC-USD-PERP", "1m", cfg)
        t = time.perf_counter()
        for c in candles:
            if with_state:
                det = pickle.loads(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
                det.config = cfg
            det.update(c)
        dt = time.perf_counter() - t
        print(f"{label:30s} {len(candles) / dt:8,.0f} candles/s  {dt / len(candles) * 1e6:6.0f} us")
    print(f"state size: {len(pickle.dumps(det)):,} bytes")


if __name__ == "__main__":
    main()
