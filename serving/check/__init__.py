"""`candleflow check`: the invariants of what Candleflow publishes, checked on the lakehouse.

- `invariants`: the rules, as pure functions over candles and per-window trade sums;
- `lake`: reads silver.candles and bronze.trades over a time range, through Trino or
  embedded (PyIceberg + DuckDB, with the tables' deletes applied);
- `revisions`: the revisions each window went through, from candles.v1 (read_committed);
- `runner`: one check over a range; `service`: the same checks on a schedule, as metrics.
"""
