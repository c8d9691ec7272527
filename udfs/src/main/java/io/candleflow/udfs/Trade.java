package io.candleflow.udfs;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.List;
import org.apache.flink.types.Row;

/** One input trade, read from the PTF's table argument by column position (resolved once). */
final class Trade {
  static final int SCALE = 18;

  String nativeSymbol;
  long tradeId;
  BigDecimal price;
  BigDecimal quantity;
  String side;
  long eventTimeUs;
  Long ingestTimeUs;
  Long firstTradeId;
  Long lastTradeId;
  String kind;
  BigDecimal contractSize;
  /** quoteQuantity(), computed once per trade (every interval adds it). */
  private BigDecimal quote;

  /** Column positions of the input table, by name. */
  static final class Layout {
    final int nativeSymbol;
    final int tradeId;
    final int price;
    final int quantity;
    final int side;
    final int eventTime;
    final int ingestTime;
    final int firstTradeId;
    final int lastTradeId;
    final int kind;
    final int contractSize;

    Layout(List<String> names) {
      nativeSymbol = names.indexOf("native_symbol");
      tradeId = require(names, "trade_id");
      price = require(names, "price");
      quantity = require(names, "quantity");
      side = names.indexOf("side");
      eventTime = require(names, "event_time");
      ingestTime = names.indexOf("ingest_time");
      firstTradeId = names.indexOf("first_trade_id");
      lastTradeId = names.indexOf("last_trade_id");
      kind = names.indexOf("kind");
      contractSize = names.indexOf("contract_size");
    }

    private static int require(List<String> names, String name) {
      int i = names.indexOf(name);
      if (i < 0) {
        throw new IllegalArgumentException(
            "CandleFunction: input table needs a column '" + name + "', has " + names);
      }
      return i;
    }
  }

  static Trade read(Row row, Layout l) {
    Trade t = new Trade();
    t.nativeSymbol = l.nativeSymbol >= 0 ? (String) str(row.getField(l.nativeSymbol)) : null;
    t.tradeId = ((Number) row.getField(l.tradeId)).longValue();
    t.price = (BigDecimal) row.getField(l.price);
    t.quantity = (BigDecimal) row.getField(l.quantity);
    t.side = l.side >= 0 ? str(row.getField(l.side)) : "UNKNOWN";
    t.eventTimeUs = micros(row.getField(l.eventTime));
    t.ingestTimeUs = l.ingestTime >= 0 ? microsOrNull(row.getField(l.ingestTime)) : null;
    t.firstTradeId = l.firstTradeId >= 0 ? longOrNull(row.getField(l.firstTradeId)) : null;
    t.lastTradeId = l.lastTradeId >= 0 ? longOrNull(row.getField(l.lastTradeId)) : null;
    t.kind = l.kind >= 0 ? str(row.getField(l.kind)) : "SPOT";
    t.contractSize = l.contractSize >= 0 ? (BigDecimal) row.getField(l.contractSize) : null;
    return t;
  }

  boolean inverse() {
    return "INVERSE".equals(kind);
  }

  boolean takerBuy() {
    return "BUY".equals(side);
  }

  long count() {
    return firstTradeId != null && lastTradeId != null ? lastTradeId - firstTradeId + 1 : 1;
  }

  long firstRawId() {
    return firstTradeId != null ? firstTradeId : tradeId;
  }

  long lastRawId() {
    return lastTradeId != null ? lastTradeId : tradeId;
  }

  /**
   * The second volume column: price x quantity, or for inverse contracts the base-asset volume
   * quantity x contract_size / price, rounded half-up to 18 decimals per trade (docs/semantics.md).
   */
  BigDecimal quoteQuantity() {
    if (quote == null) {
      quote = computeQuote();
    }
    return quote;
  }

  private BigDecimal computeQuote() {
    if (inverse()) {
      if (contractSize == null) {
        throw new IllegalArgumentException("INVERSE trade " + tradeId + " has no contract_size");
      }
      return quantity.multiply(contractSize).divide(price, SCALE, RoundingMode.HALF_UP);
    }
    return price.multiply(quantity);
  }

  private static String str(Object o) {
    return o == null ? null : o.toString();
  }

  private static Long longOrNull(Object o) {
    return o == null ? null : ((Number) o).longValue();
  }

  private static Long microsOrNull(Object o) {
    return o == null ? null : micros(o);
  }

  static long micros(Object o) {
    if (o instanceof LocalDateTime ldt) {
      Instant i = ldt.toInstant(ZoneOffset.UTC);
      return i.getEpochSecond() * 1_000_000L + i.getNano() / 1_000;
    }
    if (o instanceof Instant i) {
      return i.getEpochSecond() * 1_000_000L + i.getNano() / 1_000;
    }
    if (o instanceof Number n) {
      return n.longValue();
    }
    throw new IllegalArgumentException("CandleFunction: cannot read a time from " + o);
  }

  static LocalDateTime timestamp(Long us) {
    if (us == null) {
      return null;
    }
    return LocalDateTime.ofEpochSecond(
        Math.floorDiv(us, 1_000_000L), (int) Math.floorMod(us, 1_000_000L) * 1_000, ZoneOffset.UTC);
  }
}
