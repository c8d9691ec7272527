package io.candleflow.udfs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.table.api.dataview.MapView;

/**
 * The dedup memory of one market: trade ids as bitmaps of 4,096 ids per map entry.
 *
 * <p>Exchange trade ids are dense per market, so a day of a busy market (millions of ids) is a
 * few hundred small entries instead of millions of map entries — which the heap state backend
 * copies whole on the first access after each checkpoint (copy-on-write) and serializes on every
 * checkpoint. Each entry starts with the newest event time seen in it (8 bytes, big-endian): an
 * entry is dropped when that time falls out of the dedup horizon, so an id is remembered at least
 * as long as the horizon.
 */
final class SeenIds {
  private static final int BITS = 12;
  private static final long MASK = (1L << BITS) - 1;
  private static final int HEADER = 8;
  private static final int SIZE = HEADER + (1 << BITS) / 8;

  private SeenIds() {}

  /** Records the id; false if it was already there (a duplicate). */
  static boolean add(MapView<Long, byte[]> seen, long id, long eventTimeUs) throws Exception {
    long bucket = id >> BITS;
    int bit = (int) (id & MASK);
    byte[] bits = seen.get(bucket);
    if (bits == null) {
      bits = new byte[SIZE];
    } else if ((bits[HEADER + (bit >>> 3)] & (1 << (bit & 7))) != 0) {
      return false;
    }
    bits[HEADER + (bit >>> 3)] |= (byte) (1 << (bit & 7));
    if (eventTimeUs > newest(bits)) {
      for (int i = 0; i < HEADER; i++) {
        bits[i] = (byte) (eventTimeUs >>> (56 - 8 * i));
      }
    }
    seen.put(bucket, bits);
    return true;
  }

  /** Drops entries whose newest trade is older than the horizon. */
  static void prune(MapView<Long, byte[]> seen, long olderThanUs) throws Exception {
    List<Long> old = new ArrayList<>();
    for (Map.Entry<Long, byte[]> e : seen.entries()) {
      if (newest(e.getValue()) < olderThanUs) {
        old.add(e.getKey());
      }
    }
    for (Long bucket : old) {
      seen.remove(bucket);
    }
  }

  private static long newest(byte[] bits) {
    long t = 0;
    for (int i = 0; i < HEADER; i++) {
      t = (t << 8) | (bits[i] & 0xFFL);
    }
    return t;
  }
}
