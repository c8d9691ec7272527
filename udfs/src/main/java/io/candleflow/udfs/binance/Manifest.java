package io.candleflow.udfs.binance;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * What the job reads: the exchange files in reading order, each with what Python settled from
 * its name and first row (candleflow.binance_files: kind, symbols, contract size), so the JVM
 * only parses rows. Written by jobs/backfill_files.py; UTF-8 lines, tab-separated:
 *
 * <pre>
 * candleflow-binance-trades 1	check_first (0/1)
 * path	file_kind	exchange	symbol	native_symbol	instrument_kind	contract_size (or empty)
 * ...
 * </pre>
 *
 * Files of one market are consecutive, markets in (exchange, symbol) order.
 */
final class Manifest {
  static final String HEADER = "candleflow-binance-trades 1";

  /** One file and its market. */
  static final class Entry {
    final String path;
    final boolean agg;
    final String exchange;
    final String symbol;
    final String nativeSymbol;
    final String kind;
    final BigDecimal contractSize;

    Entry(String[] f) {
      path = f[0];
      if (!f[1].equals("trades") && !f[1].equals("aggTrades")) {
        throw new IllegalArgumentException("file kind " + f[1]);
      }
      agg = f[1].equals("aggTrades");
      exchange = f[2];
      symbol = f[3];
      nativeSymbol = f[4];
      kind = f[5];
      contractSize = f[6].isEmpty() ? null : new BigDecimal(f[6]);
    }

    String market() {
      return exchange + "\u0000" + symbol;
    }
  }

  final boolean checkFirst;
  final List<Entry> entries = new ArrayList<>();

  Manifest(InputStream in) throws IOException {
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    String head = r.readLine();
    if (head == null || !head.startsWith(HEADER + "\t")) {
      throw new IOException("not a candleflow-binance-trades manifest: " + head);
    }
    checkFirst = head.substring(HEADER.length() + 1).equals("1");
    String line;
    while ((line = r.readLine()) != null) {
      if (!line.isEmpty()) {
        String[] f = line.split("\t", -1);
        if (f.length != 7) {
          throw new IOException("manifest line with " + f.length + " fields: " + line);
        }
        entries.add(new Entry(f));
      }
    }
  }
}
