package io.candleflow.udfs.binance;

import java.io.IOException;

/**
 * The fast reader does not take this input: a row outside the plain published form, a file
 * out of exchange order, an unreadable file. Never a verdict on the data: the caller then
 * prepares the trades with the Python reader, which reads every valid row and names every bad
 * one (candleflow.binance_files), so there is one set of rules and one set of messages.
 */
public final class Refused extends IOException {
  /** Marker the Python side looks for in a failed job's exception chain. */
  public static final String MARKER = "candleflow-binance-refused";

  public Refused(String where, String why) {
    super(MARKER + ": " + where + ": " + why);
  }
}
