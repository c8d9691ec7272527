package io.candleflow.udfs;

import java.math.BigDecimal;
import org.apache.flink.table.annotation.DataTypeHint;

/**
 * One window of one interval of one market, kept in map state from its first trade (or its
 * emission as an empty window) until the market clock passes end + grace + allowed lateness.
 *
 * <p>{@code open == null} means the window has no trades (an emitted empty window whose flat
 * price is {@code flat}). {@code revision == null} means it was not emitted yet.
 */
public class Win {
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal open;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal high;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal low;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal close;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal volume;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal quoteVolume;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal takerBuyVolume;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal takerBuyQuoteVolume;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal contractSize;
  @DataTypeHint("DECIMAL(38, 18)") public BigDecimal flat;
  public Long openTime;
  public Long openId;
  public Long closeTime;
  public Long closeId;
  public Long tradeCount;
  public Long firstTradeId;
  public Long lastTradeId;
  public Integer revision;
  public Boolean inverse;

  public boolean hasTrades() {
    return open != null;
  }

  /** The price a following empty window is flat at. */
  public BigDecimal closeOrFlat() {
    return open != null ? close : flat;
  }
}
