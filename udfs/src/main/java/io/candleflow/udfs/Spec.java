package io.candleflow.udfs;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * The candle settings, passed to the PTF as one scalar string so the SQL call stays short and the
 * settings travel with the operator's state (timers fire without an eval() call after a restore).
 *
 * <p>Format: {@code intervals=1m:60000000:10000000,5m:300000000:30000000;lateness=300000000;
 * idle=60000000;dedup=86400000000;trades=1;empty=1} (name:size_us:grace_us; durations in µs).
 */
public final class Spec implements Serializable {
  private static final long serialVersionUID = 1L;

  public final String text;
  private final byte[] textBytes;
  public final String[] names;
  public final long[] sizeUs;
  public final long[] graceUs;
  public final long latenessUs;
  public final long idleUs;
  public final long dedupUs;
  public final boolean emitTrades;
  public final boolean emitEmpty;
  /** The finest interval (smallest size; the first of equals). */
  public final int finest;
  /** Interval indexes, finest first: a coarser interval's windows compose finer ones. */
  public final int[] bySize;
  /**
   * composes[i]: interval i's windows are built from the finest interval's windows when those
   * are emitted (its size is a multiple of the finest's and its grace no shorter, so every
   * finest window inside it is emitted first), instead of adding every trade to both.
   */
  public final boolean[] composes;

  private Spec(String text, List<String> names, List<long[]> sg, long lateness, long idle,
      long dedup, boolean trades, boolean empty) {
    this.text = text;
    this.textBytes = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    this.names = names.toArray(new String[0]);
    this.sizeUs = sg.stream().mapToLong(a -> a[0]).toArray();
    this.graceUs = sg.stream().mapToLong(a -> a[1]).toArray();
    this.latenessUs = lateness;
    this.idleUs = idle;
    this.dedupUs = dedup;
    this.emitTrades = trades;
    this.emitEmpty = empty;
    int n = this.names.length;
    this.bySize = java.util.stream.IntStream.range(0, n).boxed()
        .sorted(java.util.Comparator.comparingLong((Integer i) -> sizeUs[i]).thenComparing(i -> i))
        .mapToInt(Integer::intValue).toArray();
    this.finest = bySize[0];
    this.composes = new boolean[n];
    for (int i = 0; i < n; i++) {
      composes[i] = i != finest && sizeUs[i] % sizeUs[finest] == 0
          && graceUs[i] >= graceUs[finest];
    }
  }

  /** Which intervals compose the finest (the state's meaning depends on it, see composes). */
  public String compositionLayout() {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < names.length; i++) {
      b.append(composes[i] ? names[i] : "").append(',');
    }
    return b.toString();
  }

  public int count() {
    return names.length;
  }

  byte[] textBytes() {
    return textBytes;
  }

  /** What the state layout depends on: the intervals, in order, with their sizes. */
  public String intervalLayout() {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < names.length; i++) {
      b.append(i == 0 ? "" : ",").append(names[i]).append(':').append(sizeUs[i]);
    }
    return b.toString();
  }

  public static Spec parse(String text) {
    List<String> names = new ArrayList<>();
    List<long[]> sg = new ArrayList<>();
    long lateness = 300_000_000L;
    long idle = 60_000_000L;
    long dedup = 86_400_000_000L;
    boolean trades = false;
    boolean empty = true;
    for (String part : text.split(";")) {
      String p = part.trim();
      if (p.isEmpty()) {
        continue;
      }
      int eq = p.indexOf('=');
      if (eq < 0) {
        throw new IllegalArgumentException("candle spec: expected key=value, got '" + p + "'");
      }
      String key = p.substring(0, eq).trim();
      String value = p.substring(eq + 1).trim();
      switch (key) {
        case "intervals":
          for (String iv : value.split(",")) {
            String[] f = iv.trim().split(":");
            if (f.length != 3) {
              throw new IllegalArgumentException("candle spec: interval must be name:size:grace");
            }
            names.add(f[0]);
            sg.add(new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
          }
          break;
        case "lateness":
          lateness = Long.parseLong(value);
          break;
        case "idle":
          idle = Long.parseLong(value);
          break;
        case "dedup":
          dedup = Long.parseLong(value);
          break;
        case "trades":
          trades = value.equals("1") || value.equalsIgnoreCase("true");
          break;
        case "empty":
          empty = value.equals("1") || value.equalsIgnoreCase("true");
          break;
        default:
          throw new IllegalArgumentException("candle spec: unknown key '" + key + "'");
      }
    }
    if (names.isEmpty()) {
      throw new IllegalArgumentException("candle spec: at least one interval is required");
    }
    if (names.size() > 16) {
      throw new IllegalArgumentException("candle spec: at most 16 intervals");
    }
    return new Spec(text, names, sg, lateness, idle, dedup, trades, empty);
  }
}
