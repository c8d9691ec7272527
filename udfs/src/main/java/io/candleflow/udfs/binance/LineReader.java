package io.candleflow.udfs.binance;

import java.io.IOException;
import java.io.InputStream;

/**
 * Lines of a CSV byte stream, without copying: after {@link #next()} the line is
 * {@code buf[start, end)} (no line terminator). Lines end in LF or CRLF; a CR anywhere else, a
 * quote, a control byte or a non-ASCII byte is refused (the Python reader knows those forms).
 * A UTF-8 byte order mark at the start is skipped.
 */
final class LineReader {
  private static final int MAX_LINE = 1 << 16;

  private final InputStream in;
  private final String where;
  byte[] buf = new byte[1 << 17];
  int start;
  int end;
  private int pos;
  private int limit;
  private boolean eof;
  private boolean first = true;
  long lineNo;

  LineReader(InputStream in, String where) {
    this.in = in;
    this.where = where;
  }

  /** The next line, or false at the end of the stream. */
  boolean next() throws IOException {
    if (first) {
      first = false;
      fill();
      if (limit - pos >= 3 && buf[pos] == (byte) 0xEF && buf[pos + 1] == (byte) 0xBB
          && buf[pos + 2] == (byte) 0xBF) {
        pos += 3;
      }
    }
    while (true) {
      for (int i = pos; i < limit; i++) {
        byte b = buf[i];
        if (b == '\n') {
          start = pos;
          end = i;
          pos = i + 1;
          lineNo++;
          if (end > start && buf[end - 1] == '\r') {
            end--;
          }
          check(start, end);
          return true;
        }
      }
      if (eof) {
        if (pos >= limit) {
          return false;
        }
        start = pos;
        end = limit;
        pos = limit;
        lineNo++;
        check(start, end);
        return true;
      }
      if (limit - pos >= MAX_LINE) {
        throw new Refused(where + ":" + (lineNo + 1), "a line longer than " + MAX_LINE);
      }
      fill();
    }
  }

  private void check(int from, int to) throws Refused {
    for (int i = from; i < to; i++) {
      int b = buf[i];
      if (b < 0x20 || b == '"' || b == 0x7F) { // also every byte >= 0x80 (negative)
        throw new Refused(where + ":" + lineNo, "a quote, control or non-ASCII byte");
      }
    }
  }

  private void fill() throws IOException {
    if (pos > 0) {
      System.arraycopy(buf, pos, buf, 0, limit - pos);
      limit -= pos;
      pos = 0;
    }
    if (limit == buf.length) {
      byte[] bigger = new byte[buf.length * 2];
      System.arraycopy(buf, 0, bigger, 0, limit);
      buf = bigger;
    }
    int n = in.read(buf, limit, buf.length - limit);
    if (n < 0) {
      eof = true;
    } else {
      limit += n;
    }
  }
}
