package io.candleflow.udfs;

/**
 * The PTF's per-market value state of savepoints taken before {@link MarketClock} became a live
 * object in map state: the clock packed into bytes. Read once per market after such an upgrade
 * (moved into the map state, then cleared); never written again.
 */
public class Market {
  public byte[] packed;
}
