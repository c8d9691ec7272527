package io.candleflow.udfs;

/** The PTF's per-market value state: {@link MarketClock}, packed (see there for why). */
public class Market {
  public byte[] packed;
}
