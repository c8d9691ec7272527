package io.candleflow.udfs.binance;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The reader without Flink, for tests and the bench: {@code java -cp candleflow-udfs.jar
 * io.candleflow.udfs.binance.Scan [--count] MANIFEST...} prints, for each manifest, "== path",
 * one line per trade (symbol,trade_id,price,quantity,side,event_us,first_id,last_id; none with
 * --count), then "END n" or "REFUSED: file:line: why".
 */
public final class Scan {
  private Scan() {}

  public static void main(String[] args) throws Exception {
    boolean count = args.length > 0 && args[0].equals("--count");
    BufferedWriter out =
        new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
    for (int i = count ? 1 : 0; i < args.length; i++) {
      out.write("== " + args[i]);
      out.newLine();
      scan(Path.of(args[i]), count, out);
    }
    out.flush();
  }

  private static void scan(Path path, boolean count, BufferedWriter out) throws IOException {
    Manifest manifest;
    try (InputStream in = Files.newInputStream(path)) {
      manifest = new Manifest(in);
    }
    try (TradeFiles files = new TradeFiles(manifest.entries)) {
      while (files.next()) {
        RowParser r = files.row();
        BinanceTradesFormat.decimal(r.price, files);
        BinanceTradesFormat.decimal(r.quantity, files);
        if (!count) {
          boolean agg = files.entry().agg;
          out.write(files.entry().symbol + "," + r.tradeId + "," + r.price.toPlainString() + ","
              + r.quantity.toPlainString() + "," + (r.buyerMaker ? "SELL" : "BUY") + ","
              + r.eventUs + "," + (agg ? r.firstId : "") + "," + (agg ? r.lastId : ""));
          out.newLine();
        }
      }
      out.write("END " + files.trades);
    } catch (Refused r) {
      out.write("REFUSED: " + r.getMessage());
    }
    out.newLine();
  }
}
