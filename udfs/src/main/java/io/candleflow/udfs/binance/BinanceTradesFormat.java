package io.candleflow.udfs.binance;

import java.io.IOException;
import java.math.BigDecimal;
import java.util.List;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.connector.file.src.util.ArrayResultIterator;
import org.apache.flink.connector.file.src.util.CheckpointedPosition;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;

/**
 * Reads a manifest (see {@link Manifest}) and produces the trades of the files it lists as the
 * candles job's trade rows (jobs/candle_tables.py TRADE_COLUMNS), in exchange order. With
 * check_first the files are read twice: the first pass only checks, so a refused row stops
 * the job before any trade reaches it (nothing is written for a bad file).
 *
 * <p>A BulkFormat of its own, not a StreamFormat: the adapter of a StreamFormat cuts batches
 * by bytes read from the split's stream, and that stream (the manifest) is read once, so one
 * batch would hold every trade. Here a batch is at most {@link #BATCH} rows; after a restore
 * the rows already emitted are skipped.
 */
public final class BinanceTradesFormat implements BulkFormat<RowData, FileSourceSplit> {
  private static final long serialVersionUID = 1L;
  static final int PRECISION = 38;
  static final int SCALE = 18;
  static final int BATCH = 1024;

  private final String[] fields;
  private final TypeInformation<RowData> type;

  public BinanceTradesFormat(List<String> fields, TypeInformation<RowData> type) {
    this.fields = fields.toArray(new String[0]);
    this.type = type;
  }

  @Override
  public BulkFormat.Reader<RowData> createReader(Configuration config, FileSourceSplit split)
      throws IOException {
    return open(split, 0);
  }

  @Override
  public BulkFormat.Reader<RowData> restoreReader(Configuration config, FileSourceSplit split)
      throws IOException {
    long skip = split.getReaderPosition().map(CheckpointedPosition::getRecordsAfterOffset)
        .orElse(0L);
    return open(split, skip);
  }

  @Override
  public boolean isSplittable() {
    return false;
  }

  private BulkFormat.Reader<RowData> open(FileSourceSplit split, long skip) throws IOException {
    Manifest manifest;
    try (FSDataInputStream in = split.path().getFileSystem().open(split.path())) {
      manifest = new Manifest(in);
    }
    if (manifest.checkFirst) {
      try (TradeFiles check = new TradeFiles(manifest.entries)) {
        while (check.next()) {
          decimal(check.row().price, check);
          decimal(check.row().quantity, check);
        }
      }
    }
    TradeReader rows = new TradeReader(new TradeFiles(manifest.entries), fields);
    for (long i = 0; i < skip && rows.read() != null; i++) {
      // rows emitted before the checkpoint this split was restored from
    }
    return new Batches(rows, skip);
  }

  /** Batches of at most BATCH rows; positions count the rows emitted so far. */
  static final class Batches implements BulkFormat.Reader<RowData> {
    private final TradeReader rows;
    private long emitted;

    Batches(TradeReader rows, long emitted) {
      this.rows = rows;
      this.emitted = emitted;
    }

    @Override
    public BulkFormat.RecordIterator<RowData> readBatch() throws IOException {
      RowData[] batch = new RowData[BATCH];
      int n = 0;
      RowData row;
      while (n < BATCH && (row = rows.read()) != null) {
        batch[n++] = row;
      }
      if (n == 0) {
        return null;
      }
      ArrayResultIterator<RowData> it = new ArrayResultIterator<>();
      it.set(batch, n, CheckpointedPosition.NO_OFFSET, emitted);
      emitted += n;
      return it;
    }

    @Override
    public void close() throws IOException {
      rows.close();
    }
  }

  @Override
  public TypeInformation<RowData> getProducedType() {
    return type;
  }

  static DecimalData decimal(BigDecimal value, TradeFiles files) throws Refused {
    DecimalData d = DecimalData.fromBigDecimal(value, PRECISION, SCALE);
    if (d == null) {
      throw new Refused(files.entry().path, "a value beyond DECIMAL(38, 18): " + value);
    }
    return d;
  }

  /** Builds one row per trade, its columns by name. */
  static final class TradeReader implements java.io.Closeable {
    private static final StringData BUY = StringData.fromString("BUY");
    private static final StringData SELL = StringData.fromString("SELL");

    private final TradeFiles files;
    private final String[] fields;
    private Manifest.Entry strings; // the file the constants below are for
    private StringData exchange;
    private StringData symbol;
    private StringData nativeSymbol;
    private StringData kind;
    private DecimalData contractSize;

    TradeReader(TradeFiles files, String[] fields) {
      this.files = files;
      this.fields = fields;
    }

    RowData read() throws IOException {
      if (!files.next()) {
        return null;
      }
      Manifest.Entry e = files.entry();
      if (e != strings) {
        strings = e;
        exchange = StringData.fromString(e.exchange);
        symbol = StringData.fromString(e.symbol);
        nativeSymbol = StringData.fromString(e.nativeSymbol);
        kind = StringData.fromString(e.kind);
        contractSize = e.contractSize == null ? null : decimal(e.contractSize, files);
      }
      RowParser r = files.row();
      TimestampData time =
          TimestampData.fromEpochMillis(
              Math.floorDiv(r.eventUs, 1000), (int) Math.floorMod(r.eventUs, 1000) * 1000);
      GenericRowData row = new GenericRowData(fields.length);
      for (int i = 0; i < fields.length; i++) {
        row.setField(i, value(fields[i], r, e, time));
      }
      return row;
    }

    private Object value(String field, RowParser r, Manifest.Entry e, TimestampData time)
        throws Refused {
      switch (field) {
        case "exchange":
          return exchange;
        case "symbol":
          return symbol;
        case "native_symbol":
          return nativeSymbol;
        case "trade_id":
          return r.tradeId;
        case "price":
          return decimal(r.price, files);
        case "quantity":
          return decimal(r.quantity, files);
        case "side": // the buyer was the maker => the taker (aggressor) sold
          return r.buyerMaker ? SELL : BUY;
        case "event_time":
        case "ingest_time": // a file has no arrival time: the trade's own
          return time;
        case "first_trade_id":
          return e.agg ? (Long) r.firstId : null;
        case "last_trade_id":
          return e.agg ? (Long) r.lastId : null;
        case "kind":
          return kind;
        case "contract_size":
          return contractSize;
        default:
          throw new IllegalArgumentException("no column " + field + " in a Binance trade");
      }
    }

    @Override
    public void close() throws IOException {
      files.close();
    }
  }
}
