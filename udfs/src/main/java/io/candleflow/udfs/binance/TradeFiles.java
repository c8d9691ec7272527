package io.candleflow.udfs.binance;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Locale;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * The trades of the manifest's files, one after the other, checked to be in exchange order:
 * within a market (time, id) never decreases, across files too. The first row that is not
 * in plain form or not in order ends the read with {@link Refused}.
 */
final class TradeFiles implements AutoCloseable {
  private final List<Manifest.Entry> entries;
  private int next;
  private Manifest.Entry entry;
  private LineReader lines;
  private InputStream stream;
  private ZipFile zip;
  private CheckedInputStream checked;
  private long expectedCrc = -1;
  private RowParser row;
  private String market;
  private long lastUs = Long.MIN_VALUE;
  private long lastId = Long.MIN_VALUE;
  long trades;

  TradeFiles(List<Manifest.Entry> entries) {
    this.entries = entries;
  }

  /** The file of the current row. */
  Manifest.Entry entry() {
    return entry;
  }

  /** The parser holding the current row. */
  RowParser row() {
    return row;
  }

  /** Advance to the next trade; false after the last one. */
  boolean next() throws IOException {
    while (true) {
      if (lines == null) {
        if (next == entries.size()) {
          return false;
        }
        open(entries.get(next++));
      }
      boolean more;
      try {
        more = lines.next();
      } catch (Refused r) {
        throw r;
      } catch (IOException | RuntimeException ex) { // a corrupt zip member, an I/O error
        throw new Refused(entry.path + ":" + (lines.lineNo + 1), "unreadable: " + ex);
      }
      if (!more) {
        finishFile();
        continue;
      }
      if (lines.end == lines.start) {
        continue; // a blank line, as csv.reader skips it
      }
      if (lines.lineNo == 1 && row.isHeader(lines.buf, lines.start, lines.end, 1)) {
        continue;
      }
      row.parse(lines.buf, lines.start, lines.end, lines.lineNo);
      if (row.eventUs < lastUs || (row.eventUs == lastUs && row.tradeId < lastId)) {
        throw new Refused(
            entry.path + ":" + lines.lineNo, "out of exchange order (event time, trade id)");
      }
      lastUs = row.eventUs;
      lastId = row.tradeId;
      trades++;
      return true;
    }
  }

  private void open(Manifest.Entry e) throws IOException {
    entry = e;
    if (!e.market().equals(market)) {
      if (market != null && e.market().compareTo(market) < 0) {
        throw new Refused(e.path, "markets not in (exchange, symbol) order");
      }
      market = e.market();
      lastUs = Long.MIN_VALUE;
      lastId = Long.MIN_VALUE;
    }
    row = new RowParser(e.agg, e.path);
    Path path = Path.of(e.path);
    try {
      if (path.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".zip")) {
        zip = new ZipFile(path.toFile());
        List<ZipEntry> csvs = new ArrayList<>();
        for (Enumeration<? extends ZipEntry> it = zip.entries(); it.hasMoreElements(); ) {
          ZipEntry z = it.nextElement();
          if (z.getName().toLowerCase(Locale.ROOT).endsWith(".csv")) {
            csvs.add(z);
          }
        }
        if (csvs.size() != 1) {
          throw new Refused(e.path, csvs.size() + " .csv members");
        }
        expectedCrc = csvs.get(0).getCrc();
        checked = new CheckedInputStream(zip.getInputStream(csvs.get(0)), new CRC32());
        stream = checked;
      } else {
        stream = new BufferedInputStream(Files.newInputStream(path), 1 << 16);
      }
    } catch (Refused r) {
      throw r;
    } catch (IOException | RuntimeException ex) {
      throw new Refused(e.path, "unreadable: " + ex);
    }
    lines = new LineReader(stream, e.path);
  }

  private void finishFile() throws IOException {
    if (checked != null && expectedCrc >= 0 && checked.getChecksum().getValue() != expectedCrc) {
      throw new Refused(entry.path, "bad CRC-32 of the zip member");
    }
    closeFile();
  }

  private void closeFile() throws IOException {
    lines = null;
    checked = null;
    expectedCrc = -1;
    if (stream != null) {
      stream.close();
      stream = null;
    }
    if (zip != null) {
      zip.close();
      zip = null;
    }
  }

  @Override
  public void close() throws IOException {
    closeFile();
  }
}
