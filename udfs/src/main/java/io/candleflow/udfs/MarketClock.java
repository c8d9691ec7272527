package io.candleflow.udfs;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.flink.table.annotation.DataTypeHint;

/**
 * Per-market bookkeeping: the market clock and, per interval (by index in the spec), where the
 * emitted sequence of windows starts and ends.
 *
 * <p>Kept as a live object: the one entry (key 0) of the PTF's map state {@code clockState}. Map
 * state holds its values as Java objects (Flink's ExternalSerializer), so a trade reads the
 * object, updates it and puts it back without any conversion; the heap backend copies it only on
 * the first access after a checkpoint (copy-on-write), RocksDB serializes it on put. A value
 * state was converted to and from Flink's internal rows, hashed and compared on every call; an
 * earlier layout packed this object into bytes in such a value state ({@link Market}) and paid
 * for the encoding on every trade instead. {@link #decode} still reads that layout, so a
 * savepoint taken before this change restores: the first call for a market moves it over.
 */
public class MarketClock {
  private static final long NULL = Long.MIN_VALUE; // no µs time or window start is this

  /** The spec the state was built with; timers read it after a restore. */
  public String spec;
  /** clock_k: the highest trade time seen for this market (µs), null before the first trade. */
  public Long clockUs;
  /** Next market-clock time at which old trade ids are pruned from the dedup map. */
  public Long nextPruneUs;
  /** First window (start µs) of the market's sequence: its earliest accepted window. */
  public Long[] seqStart;
  /** Last emitted window start, null before the first emission. */
  public Long[] lastEmitted;
  /** Highest window start holding accepted trades. */
  public Long[] maxPending;
  /** Windows up to (excluding) this start were removed from state. */
  public Long[] purgedTo;
  /** Idle-flush timer currently registered (ms), null if none. */
  public Long[] flushAtMs;
  /**
   * Finest windows starting before this were accumulated into the coarser intervals trade by
   * trade (state restored from the packed layout) and are not folded into them; null: none.
   */
  public Long foldFromUs;
  /** Close of the last emitted window (flat price of following empty windows). */
  @DataTypeHint("ARRAY<DECIMAL(38, 18)>")
  public BigDecimal[] lastClose;

  static MarketClock fresh(Spec spec) {
    MarketClock m = new MarketClock();
    int n = spec.count();
    m.spec = spec.text;
    m.seqStart = new Long[n];
    m.lastEmitted = new Long[n];
    m.maxPending = new Long[n];
    m.purgedTo = new Long[n];
    m.flushAtMs = new Long[n];
    m.lastClose = new BigDecimal[n];
    return m;
  }

  boolean hasSpec(Spec s) {
    return s.text.equals(spec);
  }

  /** The state of a savepoint taken before the live layout: {@link Market#packed}. */
  static MarketClock decode(byte[] packed) {
    ByteBuffer b = ByteBuffer.wrap(packed);
    MarketClock m = new MarketClock();
    byte[] spec = new byte[b.getInt()];
    b.get(spec);
    m.spec = new String(spec, StandardCharsets.UTF_8);
    int n = b.getInt();
    m.clockUs = get(b);
    m.nextPruneUs = get(b);
    m.seqStart = new Long[n];
    m.lastEmitted = new Long[n];
    m.maxPending = new Long[n];
    m.purgedTo = new Long[n];
    m.flushAtMs = new Long[n];
    m.lastClose = new BigDecimal[n];
    for (int i = 0; i < n; i++) {
      m.seqStart[i] = get(b);
      m.lastEmitted[i] = get(b);
      m.maxPending[i] = get(b);
      m.purgedTo[i] = get(b);
      m.flushAtMs[i] = get(b);
      int len = b.getInt();
      if (len >= 0) {
        int scale = b.getInt();
        byte[] unscaled = new byte[len];
        b.get(unscaled);
        m.lastClose[i] = new BigDecimal(new BigInteger(unscaled), scale);
      }
    }
    return m;
  }

  private static Long get(ByteBuffer b) {
    long v = b.getLong();
    return v == NULL ? null : v;
  }
}
