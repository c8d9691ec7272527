package io.candleflow.udfs;

import java.time.LocalDateTime;
import java.util.List;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.dataview.MapView;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.types.Row;

/**
 * The bronze job's dedup (jobs/bronze.py): one Process Table Function, partitioned by (exchange,
 * symbol), that passes on the first copy of each trade id of the market and drops later copies
 * (docs/semantics.md, "Bronze").
 *
 * <p>Call: {@code BronzeFunction(trades => TABLE t PARTITION BY (exchange, symbol), horizon =>
 * 86400000, uid => 'bronze-dedup-v1')}. Output: the trade's other columns (the partition keys come
 * first, added by Flink), times as TIMESTAMP(6) whether the input carries them as epoch-µs BIGINT
 * (Kafka) or as TIMESTAMP(6) (files).
 *
 * <p>Why not Flink SQL's keep-first-row dedup: that keeps one state row per (exchange, symbol,
 * trade_id) — a keyed lookup, a TTL wrapper and, on the heap backend, a copy-on-write entry per
 * trade. Exchange trade ids are dense per market, so here a market's memory is {@link SeenIds}:
 * bitmaps of 4,096 ids per map entry, each entry stamped with the newest processing time an id was
 * added to it. An entry is dropped once that stamp is older than {@code horizon} (ms), so an id is
 * remembered at least {@code horizon} ms of processing time after it was first seen (longer while
 * newer ids of its entry keep it alive).
 */
@DataTypeHint(BronzeFunction.OUTPUT_TYPE)
public class BronzeFunction extends ProcessTableFunction<Row> {
  private static final long serialVersionUID = 1L;

  static final String OUTPUT_TYPE =
      "ROW<native_symbol STRING NOT NULL, trade_id BIGINT NOT NULL, "
          + "price DECIMAL(38, 18) NOT NULL, quantity DECIMAL(38, 18) NOT NULL, "
          + "side STRING NOT NULL, event_time TIMESTAMP(6) NOT NULL, "
          + "ingest_time TIMESTAMP(6) NOT NULL, first_trade_id BIGINT, last_trade_id BIGINT, "
          + "kind STRING NOT NULL, contract_size DECIMAL(38, 18), sequence BIGINT>";

  /** The output columns, in order, as the input table names them. */
  private static final List<String> COLUMNS =
      List.of(
          "native_symbol",
          "trade_id",
          "price",
          "quantity",
          "side",
          "event_time",
          "ingest_time",
          "first_trade_id",
          "last_trade_id",
          "kind",
          "contract_size",
          "sequence");

  /** Columns of a newer Trade contract (v2's exchange sequence): null when the input is older. */
  private static final List<String> OPTIONAL = List.of("sequence");

  private static final int TRADE_ID = 1;
  private static final int EVENT_TIME = 5;
  private static final int INGEST_TIME = 6;
  /** The key of the market's one entry in {@code nextPrune}. */
  private static final Integer MARKET = 0;

  /** Input position of each output column, resolved on the first call. */
  private transient int[] positions;

  // ttl = "0": no TTL wrapper around the state (every access would go through it); old entries
  // are pruned by their own stamps instead (SeenIds.prune).
  public void eval(
      Context ctx,
      @StateHint(ttl = "0") MapView<Long, byte[]> seenIds,
      @StateHint(ttl = "0") MapView<Integer, Long> nextPrune,
      @ArgumentHint(ArgumentTrait.SET_SEMANTIC_TABLE) Row trades,
      Long horizon)
      throws Exception {
    if (positions == null) {
      positions = positions(ctx);
    }
    long ttlUs = horizon * 1_000L;
    long nowUs = System.currentTimeMillis() * 1_000L;
    long id = ((Number) trades.getField(positions[TRADE_ID])).longValue();
    if (!SeenIds.add(seenIds, id, nowUs)) {
      return; // a copy of a trade already passed on
    }
    Long next = nextPrune.get(MARKET);
    if (next == null || nowUs >= next) {
      if (next != null) {
        SeenIds.prune(seenIds, nowUs - ttlUs);
      }
      nextPrune.put(MARKET, nowUs + Math.max(ttlUs / 4, 1L));
    }
    Row out = new Row(COLUMNS.size());
    for (int i = 0; i < positions.length; i++) {
      Object v = positions[i] < 0 ? null : trades.getField(positions[i]);
      out.setField(i, i == EVENT_TIME || i == INGEST_TIME ? timestamp(v) : v);
    }
    collect(out);
  }

  private static int[] positions(Context ctx) {
    DataType type = ctx.tableSemanticsFor("trades").dataType();
    List<String> names = DataType.getFieldNames(type);
    int[] at = new int[COLUMNS.size()];
    for (int i = 0; i < at.length; i++) {
      at[i] = names.indexOf(COLUMNS.get(i));
      if (at[i] < 0 && !OPTIONAL.contains(COLUMNS.get(i))) {
        throw new IllegalArgumentException(
            "BronzeFunction: input table needs a column '" + COLUMNS.get(i) + "', has " + names);
      }
    }
    return at;
  }

  /** TIMESTAMP(6) from epoch µs (BIGINT, Kafka) or a timestamp already (files). */
  private static LocalDateTime timestamp(Object v) {
    if (v == null || v instanceof LocalDateTime) {
      return (LocalDateTime) v;
    }
    return Trade.timestamp(Trade.micros(v));
  }
}
