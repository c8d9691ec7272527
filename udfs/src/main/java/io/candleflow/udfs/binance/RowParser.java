package io.candleflow.udfs.binance;

import java.math.BigDecimal;

/**
 * The data rows of one trades or aggTrades file in their plain published form, parsed from
 * bytes. It accepts a subset of what candleflow.binance_files.read_trades accepts, with the
 * same values: ASCII digits for ids and times, {@code digits[.digits]} for price and quantity
 * (positive, at most 18 decimals), true/false in any letter case for is_buyer_maker, the column
 * counts of the kind, the file's time unit fixed by its first row (ms or µs, by magnitude).
 * Anything else is refused, never judged: the Python reader then reads the file.
 *
 * <pre>
 * trades     id, price, qty, quoteQty, time, isBuyerMaker[, isBestMatch]        6 or 7
 * aggTrades  id, price, qty, firstId, lastId, time, isBuyerMaker[, isBestMatch] 7 or 8
 * </pre>
 */
final class RowParser {
  static final int MAX_SCALE = 18;
  private static final long US_THRESHOLD = 100_000_000_000_000L; // 1e14: µs from 1973 on
  private static final long MS_MINIMUM = 100_000_000_000L; // 1e11: ms from 1973 on

  private final boolean agg;
  private final String where;
  private final int[] from = new int[9];
  private final int[] to = new int[9];
  private long factor; // 0 until the first row; then 1 (µs) or 1000 (ms)

  // The parsed row.
  long tradeId;
  BigDecimal price;
  BigDecimal quantity;
  long firstId;
  long lastId;
  long eventUs;
  boolean buyerMaker;

  RowParser(boolean agg, String where) {
    this.agg = agg;
    this.where = where;
  }

  /** Whether line 1 is a header as the Python reader decides it: no number in its first two
   * fields. Refused when that cannot be told from plain letters and digits. */
  boolean isHeader(byte[] b, int start, int end, long line) throws Refused {
    int n = split(b, start, end);
    boolean words = true;
    for (int f = 0; f < Math.min(n, 2); f++) {
      words &= isWord(b, from[f], to[f]);
    }
    if (words) {
      return true;
    }
    if (n >= 2 && isDecimal(b, from[0], to[0]) && isDecimal(b, from[1], to[1])) {
      return false;
    }
    throw refuse(line, "a first line that is neither a plain header nor a plain row");
  }

  /** Parse a data row into the fields above; refuses what is not plainly valid. */
  void parse(byte[] b, int start, int end, long line) throws Refused {
    int n = split(b, start, end);
    if (agg ? (n != 7 && n != 8) : (n != 6 && n != 7)) {
      throw refuse(line, n + " columns");
    }
    tradeId = digits(b, 0, line);
    price = positive(b, 1, line);
    quantity = positive(b, 2, line);
    int time;
    if (agg) {
      firstId = digits(b, 3, line);
      lastId = digits(b, 4, line);
      if (lastId < firstId) {
        throw refuse(line, "last id before first id");
      }
      time = 5;
    } else {
      time = 4;
    }
    eventUs = micros(digits(b, time, line), line);
    buyerMaker = bool(b, time + 1, line);
  }

  private long micros(long value, long line) throws Refused {
    boolean us = value >= US_THRESHOLD;
    if (value < MS_MINIMUM) {
      throw refuse(line, "a time that is neither epoch ms nor epoch µs");
    }
    if (factor == 0) {
      factor = us ? 1 : 1000;
    } else if (us != (factor == 1)) {
      throw refuse(line, "a time in another unit than the file's first row");
    }
    return value * factor;
  }

  private int split(byte[] b, int start, int end) {
    int n = 0;
    from[0] = start;
    for (int i = start; i < end; i++) {
      if (b[i] == ',') {
        to[n] = i;
        if (++n == from.length) {
          return n + 1; // more columns than any kind has
        }
        from[n] = i + 1;
      }
    }
    to[n] = end;
    return n + 1;
  }

  private long digits(byte[] b, int f, long line) throws Refused {
    int s = from[f];
    int e = to[f];
    if (e <= s || e - s > 18) {
      throw refuse(line, "column " + (f + 1) + " is not a plain integer");
    }
    long v = 0;
    for (int i = s; i < e; i++) {
      int d = b[i] - '0';
      if (d < 0 || d > 9) {
        throw refuse(line, "column " + (f + 1) + " is not a plain integer");
      }
      v = v * 10 + d;
    }
    return v;
  }

  private BigDecimal positive(byte[] b, int f, long line) throws Refused {
    int s = from[f];
    int e = to[f];
    long unscaled = 0;
    int digits = 0;
    int scale = -1; // digits after the point; -1: no point yet
    int before = 0; // digits before the point
    boolean nonZero = false;
    for (int i = s; i < e; i++) {
      int c = b[i];
      if (c == '.' && scale < 0 && before > 0) {
        scale = 0;
        continue;
      }
      int d = c - '0';
      if (d < 0 || d > 9) {
        throw refuse(line, "column " + (f + 1) + " is not a plain decimal");
      }
      nonZero |= d != 0;
      if (unscaled != 0 || d != 0) {
        digits++;
      }
      unscaled = unscaled * 10 + d; // exact while digits <= 18
      if (scale >= 0) {
        scale++;
      } else {
        before++;
      }
    }
    if (scale == 0 || e == s || !nonZero || scale > MAX_SCALE) {
      throw refuse(line, "column " + (f + 1) + " is not a plain positive decimal");
    }
    if (digits > 18) {
      return new BigDecimal(new String(b, s, e - s, java.nio.charset.StandardCharsets.US_ASCII));
    }
    return BigDecimal.valueOf(unscaled, Math.max(scale, 0));
  }

  private boolean bool(byte[] b, int f, long line) throws Refused {
    int s = from[f];
    int len = to[f] - s;
    if (len == 4 && lower(b[s]) == 't' && lower(b[s + 1]) == 'r' && lower(b[s + 2]) == 'u'
        && lower(b[s + 3]) == 'e') {
      return true;
    }
    if (len == 5 && lower(b[s]) == 'f' && lower(b[s + 1]) == 'a' && lower(b[s + 2]) == 'l'
        && lower(b[s + 3]) == 's' && lower(b[s + 4]) == 'e') {
      return false;
    }
    throw refuse(line, "column " + (f + 1) + " is not true/false");
  }

  private static int lower(byte c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  }

  /** Letters, '_' and ' ' only, and not a word Python's Decimal reads (NaN, Infinity). */
  private static boolean isWord(byte[] b, int s, int e) {
    StringBuilder w = new StringBuilder();
    for (int i = s; i < e; i++) {
      int c = lower(b[i]);
      if (c == ' ') {
        continue;
      }
      if ((c < 'a' || c > 'z') && c != '_') {
        return false;
      }
      w.append((char) c);
    }
    String word = w.toString();
    return !(word.equals("nan") || word.equals("snan") || word.equals("inf")
        || word.equals("infinity"));
  }

  private static boolean isDecimal(byte[] b, int s, int e) {
    if (e <= s) {
      return false;
    }
    for (int i = s; i < e; i++) {
      if ((b[i] < '0' || b[i] > '9') && b[i] != '.') {
        return false;
      }
    }
    return true;
  }

  private Refused refuse(long line, String why) {
    return new Refused(where + ":" + line, why);
  }
}
