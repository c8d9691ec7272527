package io.candleflow.udfs;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Per-market bookkeeping: the market clock and, per interval (by index in the spec), where the
 * emitted sequence of windows starts and ends. Kept in state packed into one byte array
 * ({@link Market}): the PTF runner converts, hashes and compares its value state on every
 * trade, which for this many boxed fields was a quarter of the operator's time.
 */
final class MarketClock {
  private static final long NULL = Long.MIN_VALUE; // no µs time or window start is this

  /** The spec the state was built with (UTF-8); timers read it after a restore. */
  byte[] spec;
  /** clock_k: the highest trade time seen for this market (µs), null before the first trade. */
  Long clockUs;
  /** Next market-clock time at which old trade ids are pruned from the dedup map. */
  Long nextPruneUs;
  /** First window (start µs) of the market's sequence: its earliest accepted window. */
  Long[] seqStart;
  /** Last emitted window start, null before the first emission. */
  Long[] lastEmitted;
  /** Highest window start holding accepted trades. */
  Long[] maxPending;
  /** Windows up to (excluding) this start were removed from state. */
  Long[] purgedTo;
  /** Idle-flush timer currently registered (ms), null if none. */
  Long[] flushAtMs;
  /** Close of the last emitted window (flat price of following empty windows). */
  BigDecimal[] lastClose;

  static MarketClock fresh(Spec spec) {
    MarketClock m = new MarketClock();
    int n = spec.count();
    m.spec = spec.textBytes();
    m.seqStart = new Long[n];
    m.lastEmitted = new Long[n];
    m.maxPending = new Long[n];
    m.purgedTo = new Long[n];
    m.flushAtMs = new Long[n];
    m.lastClose = new BigDecimal[n];
    return m;
  }

  String specText() {
    return new String(spec, StandardCharsets.UTF_8);
  }

  boolean hasSpec(Spec s) {
    return Arrays.equals(spec, s.textBytes());
  }

  static MarketClock decode(byte[] packed) {
    ByteBuffer b = ByteBuffer.wrap(packed);
    MarketClock m = new MarketClock();
    m.spec = new byte[b.getInt()];
    b.get(m.spec);
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

  byte[] encode() {
    int n = seqStart.length;
    byte[][] closes = new byte[n][];
    int size = 4 + spec.length + 4 + 16 + n * (40 + 4);
    for (int i = 0; i < n; i++) {
      if (lastClose[i] != null) {
        closes[i] = lastClose[i].unscaledValue().toByteArray();
        size += 4 + closes[i].length;
      }
    }
    ByteBuffer b = ByteBuffer.allocate(size);
    b.putInt(spec.length).put(spec).putInt(n);
    put(b, clockUs);
    put(b, nextPruneUs);
    for (int i = 0; i < n; i++) {
      put(b, seqStart[i]);
      put(b, lastEmitted[i]);
      put(b, maxPending[i]);
      put(b, purgedTo[i]);
      put(b, flushAtMs[i]);
      if (closes[i] == null) {
        b.putInt(-1);
      } else {
        b.putInt(closes[i].length).putInt(lastClose[i].scale()).put(closes[i]);
      }
    }
    return b.array();
  }

  private static Long get(ByteBuffer b) {
    long v = b.getLong();
    return v == NULL ? null : v;
  }

  private static void put(ByteBuffer b, Long v) {
    b.putLong(v == null ? NULL : v);
  }
}
