package io.candleflow.udfs;

import java.math.BigDecimal;
import org.apache.flink.table.annotation.DataTypeHint;

/**
 * Per-market bookkeeping (value state): the market clock and, per interval (by index in the spec),
 * where the emitted sequence of windows starts and ends.
 */
public class Market {
  /** The spec the state was built with; timers read it after a restore. */
  public String spec;
  /** clock_k: the highest trade time seen for this market (µs), null before the first trade. */
  public Long clockUs;
  /** Next market-clock time at which old trade ids are pruned from the dedup map. */
  public Long nextPruneUs;

  /** First window (start µs) of the market's sequence: its earliest accepted window. */
  @DataTypeHint("ARRAY<BIGINT>") public Long[] seqStart;
  /** Last emitted window start, null before the first emission. */
  @DataTypeHint("ARRAY<BIGINT>") public Long[] lastEmitted;
  /** Highest window start holding accepted trades. */
  @DataTypeHint("ARRAY<BIGINT>") public Long[] maxPending;
  /** Windows up to (excluding) this start were removed from state. */
  @DataTypeHint("ARRAY<BIGINT>") public Long[] purgedTo;
  /** Idle-flush timer currently registered (ms), null if none. */
  @DataTypeHint("ARRAY<BIGINT>") public Long[] flushAtMs;
  /** Close of the last emitted window (flat price of following empty windows). */
  @DataTypeHint("ARRAY<DECIMAL(38, 18)>") public BigDecimal[] lastClose;

  void init(Spec spec) {
    int n = spec.count();
    this.spec = spec.text;
    seqStart = new Long[n];
    lastEmitted = new Long[n];
    maxPending = new Long[n];
    purgedTo = new Long[n];
    flushAtMs = new Long[n];
    lastClose = new BigDecimal[n];
  }
}
