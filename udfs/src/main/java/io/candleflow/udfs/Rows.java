package io.candleflow.udfs;

import java.math.BigDecimal;
import java.math.RoundingMode;
import org.apache.flink.types.Row;

/** Builds the PTF's output rows; one wide row type carries CANDLE, LATE and TRADE kinds. */
final class Rows {
  static final String OUTPUT_TYPE =
      "ROW<"
          + "kind STRING, ivl STRING, window_start TIMESTAMP(6), window_end TIMESTAMP(6), "
          + "window_start_us BIGINT, "
          + "open DECIMAL(38, 18), high DECIMAL(38, 18), low DECIMAL(38, 18), "
          + "close DECIMAL(38, 18), volume DECIMAL(38, 18), quote_volume DECIMAL(38, 18), "
          + "trade_count BIGINT, taker_buy_volume DECIMAL(38, 18), "
          + "taker_buy_quote_volume DECIMAL(38, 18), vwap DECIMAL(38, 18), "
          + "first_trade_id BIGINT, last_trade_id BIGINT, revision INT, is_empty BOOLEAN, "
          + "t_native_symbol STRING, t_trade_id BIGINT, t_price DECIMAL(38, 18), "
          + "t_quantity DECIMAL(38, 18), t_side STRING, t_event_time TIMESTAMP(6), "
          + "t_event_time_us BIGINT, t_ingest_time TIMESTAMP(6), t_first_trade_id BIGINT, "
          + "t_last_trade_id BIGINT, t_kind STRING, t_contract_size DECIMAL(38, 18), "
          + "reason STRING, clock TIMESTAMP(6), "
          + "window_end_us BIGINT, t_ingest_time_us BIGINT, clock_us BIGINT>";
  static final int ARITY = 36;

  static final String CANDLE = "CANDLE";
  static final String LATE = "LATE";
  static final String TRADE = "TRADE";

  private Rows() {}

  static Row candle(String interval, long start, long size, Win w, int revision) {
    Row r = new Row(ARITY);
    r.setField(0, CANDLE);
    r.setField(1, interval);
    r.setField(2, Trade.timestamp(start));
    r.setField(3, Trade.timestamp(start + size));
    r.setField(4, start);
    r.setField(33, start + size);
    if (w.hasTrades()) {
      r.setField(5, w.open);
      r.setField(6, w.high);
      r.setField(7, w.low);
      r.setField(8, w.close);
      r.setField(9, w.volume);
      r.setField(10, w.quoteVolume);
      r.setField(11, w.tradeCount);
      r.setField(12, w.takerBuyVolume);
      r.setField(13, w.takerBuyQuoteVolume);
      r.setField(14, vwap(w));
      r.setField(15, w.firstTradeId);
      r.setField(16, w.lastTradeId);
      r.setField(18, false);
    } else {
      r.setField(5, w.flat);
      r.setField(6, w.flat);
      r.setField(7, w.flat);
      r.setField(8, w.flat);
      r.setField(9, BigDecimal.ZERO);
      r.setField(10, BigDecimal.ZERO);
      r.setField(11, 0L);
      r.setField(12, BigDecimal.ZERO);
      r.setField(13, BigDecimal.ZERO);
      r.setField(18, true);
    }
    r.setField(17, revision);
    return r;
  }

  /** quote_volume / volume; for inverse contracts volume x contract_size / base volume. */
  static BigDecimal vwap(Win w) {
    if (w.volume.signum() == 0) {
      return null;
    }
    if (Boolean.TRUE.equals(w.inverse)) {
      if (w.quoteVolume.signum() == 0) {
        return null;
      }
      return w.volume
          .multiply(w.contractSize)
          .divide(w.quoteVolume, Trade.SCALE, RoundingMode.HALF_UP);
    }
    return w.quoteVolume.divide(w.volume, Trade.SCALE, RoundingMode.HALF_UP);
  }

  static Row trade(String kind, Trade t) {
    Row r = new Row(ARITY);
    r.setField(0, kind);
    r.setField(19, t.nativeSymbol);
    r.setField(20, t.tradeId);
    r.setField(21, t.price);
    r.setField(22, t.quantity);
    r.setField(23, t.side);
    r.setField(24, Trade.timestamp(t.eventTimeUs));
    r.setField(25, t.eventTimeUs);
    r.setField(26, Trade.timestamp(t.ingestTimeUs));
    r.setField(34, t.ingestTimeUs);
    r.setField(27, t.firstTradeId);
    r.setField(28, t.lastTradeId);
    r.setField(29, t.kind);
    r.setField(30, t.contractSize);
    return r;
  }

  static Row late(Trade t, String interval, long start, long size, long clockUs) {
    Row r = trade(LATE, t);
    r.setField(1, interval);
    r.setField(2, Trade.timestamp(start));
    r.setField(3, Trade.timestamp(start + size));
    r.setField(4, start);
    r.setField(33, start + size);
    r.setField(31, "BEYOND_ALLOWED_LATENESS");
    r.setField(32, Trade.timestamp(clockUs));
    r.setField(35, clockUs);
    return r;
  }
}
