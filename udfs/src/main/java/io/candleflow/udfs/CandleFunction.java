package io.candleflow.udfs;

import java.math.BigDecimal;
import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.dataview.MapView;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.types.Row;

/**
 * The candles operator: one Process Table Function, partitioned by (exchange, symbol), that
 * deduplicates trades, makes the late/not-late decision once per trade and interval against the
 * market's own clock, and emits final candles, corrections (revision + 1), empty flat candles and
 * DLQ rows. The rules are in docs/semantics.md; this class follows them step by step.
 *
 * <p>Call: {@code CandleFunction(trades => TABLE t PARTITION BY (exchange, symbol),
 * spec => '...', uid => 'candles-ptf-v1')}. Deliberately WITHOUT {@code on_time}: Flink 2.1's
 * PTF runner silently drops input rows whose on_time is at or below the operator's watermark
 * (ProcessTableRunner.processEval), which would lose a lagging market's trades to another
 * market's watermark. Lateness is this function's decision, on the market's own clock; the
 * watermark still reaches the operator and drives the idle-flush timers.
 */
@DataTypeHint(Rows.OUTPUT_TYPE)
public class CandleFunction extends ProcessTableFunction<Row> {
  private static final long serialVersionUID = 1L;

  /** The key of the market's one entry in the map state {@code clockState}. */
  private static final Integer MARKET = 0;

  private transient Spec spec;
  private transient Trade.Layout layout;

  // ttl = "0": no TTL wrapper in the state layout. With the default (Long.MAX_VALUE TTL) every
  // state access went through the TTL state factory; removing it more than doubled the rate.
  // Old trade ids are pruned by event time instead (SeenIds.prune), windows by the market clock.
  // The dedup state is `seenIds` (bitmaps); the earlier per-id map `seen` of savepoints taken
  // before it is left unread: ids seen before such an upgrade are not deduplicated again.
  // The market's clock is the live object `clockState[0]` (MarketClock); `state` only holds it in
  // savepoints taken before that, packed, and is moved over and cleared on first use.
  public void eval(
      Context ctx,
      @StateHint(ttl = "0") Market state,
      @StateHint(ttl = "0") MapView<Long, Win> windows,
      @StateHint(ttl = "0") MapView<Long, byte[]> seenIds,
      @StateHint(ttl = "0") MapView<Integer, MarketClock> clockState,
      @ArgumentHint(ArgumentTrait.SET_SEMANTIC_TABLE) Row trades,
      String spec)
      throws Exception {
    Spec s = spec(spec);
    if (layout == null) {
      DataType type = ctx.tableSemanticsFor("trades").dataType();
      layout = new Trade.Layout(DataType.getFieldNames(type));
    }
    MarketClock market = market(state, clockState);
    if (market == null) {
      market = MarketClock.fresh(s);
    } else if (!market.hasSpec(s)) {
      // State is indexed by interval: changing the intervals would reinterpret it, so
      // refuse. Grace, lateness, idle delay, dedup horizon and outputs may change across a
      // savepoint; the market then follows the new settings (its timers read its spec).
      Spec was = Spec.parse(market.spec);
      String before = was.intervalLayout();
      if (!before.equals(s.intervalLayout())) {
        throw new IllegalStateException(
            "CandleFunction: intervals changed from '" + before + "' to '"
                + s.intervalLayout()
                + "'; start from a fresh state (no savepoint) to change intervals");
      }
      if (!was.compositionLayout().equals(s.compositionLayout())) {
        // Which intervals are built from the finest one decides what the pending windows hold.
        throw new IllegalStateException(
            "CandleFunction: the grace change makes a coarser interval's grace shorter or "
                + "longer than the finest interval's where it was not; start from a fresh state "
                + "(no savepoint) for it");
      }
      market.spec = s.text;
    }
    Trade t = Trade.read(trades, layout);

    // 1. Dedup by trade id within the market.
    if (!SeenIds.add(seenIds, t.tradeId, t.eventTimeUs)) {
      if (state.packed != null) {
        state.packed = null; // moved into `clockState` by market(): clear the old layout
        clockState.put(MARKET, market);
      }
      return;
    }
    if (s.emitTrades) {
      collect(Rows.trade(Rows.TRADE, t));
    }

    // 2. Late or not, per interval, against the market clock before this trade (t is inside
    // its own window, so the clock after it would give the same answer), then 3. advance the
    // clock and emit every window that became due.
    Long before = market.clockUs;
    long clock = before == null ? t.eventTimeUs : Math.max(before, t.eventTimeUs);
    market.clockUs = clock;
    TimeContext<Long> time = ctx.timeContext(Long.class);
    // The finest interval takes every accepted trade. A coarser interval that composes it
    // (Spec.composes) takes the trade itself only if the trade's finest window is not pending
    // (emitted already, late for the finest interval, or before foldFromUs) or its own window
    // is not pending (emitted: a correction). Otherwise both windows are pending, and the trade
    // reaches the coarser window when its finest window is emitted and folded in (fold): a
    // coarser window is due only after every finest window inside it (Spec.composes), and
    // emission runs finest first, so it is still pending then. Each trade is added once, not
    // once per interval.
    int f = s.finest;
    long fineStart = alignDown(t.eventTimeUs, s.sizeUs[f]);
    boolean finePending =
        (before == null || before < fineStart + s.sizeUs[f] + s.graceUs[f] + s.latenessUs)
            && (market.lastEmitted[f] == null || fineStart > market.lastEmitted[f])
            && (market.foldFromUs == null || fineStart >= market.foldFromUs);
    for (int i : s.bySize) {
      long size = s.sizeUs[i];
      long start = alignDown(t.eventTimeUs, size);
      if (before != null && before >= start + size + s.graceUs[i] + s.latenessUs) {
        collect(Rows.late(t, s.names[i], start, size, before));
      } else if (s.composes[i] && finePending && pending(market, i, start)) {
        pend(s, i, market, time, start);
      } else {
        accept(s, i, market, windows, time, t, start);
      }
      emitUpTo(s, i, market, windows, alignDown(clock - s.graceUs[i] - size, size));
      purge(s, i, market, windows, clock);
    }
    if (market.nextPruneUs == null) {
      market.nextPruneUs = clock + s.dedupUs / 4;
    } else if (clock >= market.nextPruneUs) {
      SeenIds.prune(seenIds, clock - s.dedupUs);
      market.nextPruneUs = clock + s.dedupUs / 4;
    }
    state.packed = null;
    // Put back (the heap backend already holds this object; RocksDB needs the put).
    clockState.put(MARKET, market);
  }

  /**
   * Idle flush: the global watermark finalises pending windows of a market that went quiet.
   * Unnamed timers: Flink 2.1 forgets a named timer re-registered under the name of the timer
   * being fired, so each interval's deadline is kept in state and checked here.
   */
  public void onTimer(
      OnTimerContext ctx,
      Market state,
      MapView<Long, Win> windows,
      MapView<Long, byte[]> seenIds,
      MapView<Integer, MarketClock> clockState)
      throws Exception {
    MarketClock market = market(state, clockState);
    if (market == null) {
      return;
    }
    Spec s = spec(market.spec);
    TimeContext<Long> time = ctx.timeContext(Long.class);
    Long wmMs = time.currentWatermark();
    Long firedMs = time.time();
    long nowMs = Math.max(wmMs == null ? Long.MIN_VALUE : wmMs,
        firedMs == null ? Long.MIN_VALUE : firedMs);
    for (int i : s.bySize) {
      Long armed = market.flushAtMs[i];
      if (armed == null || armed > nowMs || market.maxPending[i] == null) {
        continue;
      }
      market.flushAtMs[i] = null;
      long size = s.sizeUs[i];
      long bound = nowMs == Long.MAX_VALUE
          ? market.maxPending[i]
          : Math.min(market.maxPending[i],
              alignDown(nowMs * 1000L - s.graceUs[i] - s.idleUs - size, size));
      emitUpTo(s, i, market, windows, bound);
      Long last = market.lastEmitted[i];
      if (last == null || market.maxPending[i] > last) {
        // Every window with trades up to `bound` is emitted: the next one starts after both.
        long next = last == null ? market.seqStart[i] : last + size;
        registerFlush(s, i, market, time, Math.max(next, bound + size));
      }
    }
    state.packed = null;
    clockState.put(MARKET, market);
  }

  /**
   * The market's live clock, or null for a market without state. A market whose state is still
   * in the layout of an older savepoint ({@code state.packed}) is decoded once; the caller puts
   * it into {@code clockState} and clears {@code state}.
   */
  private static MarketClock market(Market state, MapView<Integer, MarketClock> clockState)
      throws Exception {
    MarketClock market = clockState.get(MARKET);
    if (market == null && state.packed != null) {
      market = MarketClock.decode(state.packed);
      // That layout added every trade to every interval: the finest windows holding trades
      // now are in the coarser ones already and must not be folded in again.
      Spec s = Spec.parse(market.spec);
      Long pending = market.maxPending[s.finest];
      market.foldFromUs = pending == null ? null : pending + s.sizeUs[s.finest];
    }
    return market;
  }

  /**
   * Adds trade t to interval i's window at {@code start}: accumulated while the window is
   * pending, a correction once it was emitted.
   */
  private void accept(Spec s, int i, MarketClock m, MapView<Long, Win> windows,
      TimeContext<Long> time, Trade t, long start) throws Exception {
    long size = s.sizeUs[i];
    long key = key(start, i);
    Win w = windows.get(key);
    if (w == null) {
      w = new Win();
    }
    add(w, t);
    if (m.maxPending[i] == null || start > m.maxPending[i]) {
      m.maxPending[i] = start;
    }
    Long last = m.lastEmitted[i];
    if (m.seqStart[i] == null) {
      m.seqStart[i] = start;
    }
    if (last == null || start > last) {
      // Not emitted yet: accumulate; it is emitted when the clock (or an idle flush) gets there.
      if (start < m.seqStart[i]) {
        m.seqStart[i] = start;
      }
      windows.put(key, w);
      registerFlush(s, i, m, time, start);
      return;
    }
    if (start < m.seqStart[i]) {
      // Before the first emitted window: the sequence grows backwards. Emit this window and the
      // empty windows up to the old start, all due since a later window already was.
      long oldStart = m.seqStart[i];
      m.seqStart[i] = start;
      w.revision = 0;
      windows.put(key, w);
      collect(Rows.candle(s.names[i], start, size, w, 0));
      emitEmptyChain(s, i, m, windows, start + size, oldStart - size, w.close, false);
      return;
    }
    // Already emitted and within the allowed lateness: a correction, revision + 1.
    int revision = w.revision == null ? 1 : w.revision + 1;
    w.revision = revision;
    windows.put(key, w);
    collect(Rows.candle(s.names[i], start, size, w, revision));
    // Following empty windows were flat at the old close: re-price those that change.
    emitEmptyChain(s, i, m, windows, start + size, last, w.close, true);
  }

  /**
   * Interval i's bookkeeping for a trade its window will get from the finest interval's window
   * (folded in when that is emitted): the window is pending, its flush timer armed.
   */
  private void pend(Spec s, int i, MarketClock m, TimeContext<Long> time, long start) {
    if (m.maxPending[i] == null || start > m.maxPending[i]) {
      m.maxPending[i] = start;
    }
    if (m.seqStart[i] == null || start < m.seqStart[i]) {
      m.seqStart[i] = start;
    }
    registerFlush(s, i, m, time, start);
  }

  /** Interval i's window at {@code start} is not emitted yet. */
  private static boolean pending(MarketClock m, int i, long start) {
    return m.lastEmitted[i] == null || start > m.lastEmitted[i];
  }

  /**
   * The finest window at {@code start}, just emitted: its trades go into the coarser windows
   * still pending (those already emitted took each of its trades themselves, see eval).
   */
  private void fold(Spec s, MarketClock m, MapView<Long, Win> windows, long start, Win fine)
      throws Exception {
    if (m.foldFromUs != null && start < m.foldFromUs) {
      return; // its trades were added to the coarser windows one by one (an older state layout)
    }
    for (int i = 0; i < s.count(); i++) {
      if (!s.composes[i]) {
        continue;
      }
      long coarse = alignDown(start, s.sizeUs[i]);
      if (!pending(m, i, coarse)) {
        continue;
      }
      long key = key(coarse, i);
      Win w = windows.get(key);
      if (w == null) {
        w = new Win();
      }
      merge(w, fine);
      windows.put(key, w);
    }
  }

  /** (Re-)emit the empty windows from..to at price `flat`, stopping at a window with trades. */
  private void emitEmptyChain(Spec s, int i, MarketClock m, MapView<Long, Win> windows, long from,
      long to, BigDecimal flat, boolean corrections) throws Exception {
    long size = s.sizeUs[i];
    long x = from;
    for (; x <= to; x += size) {
      long key = key(x, i);
      Win e = windows.get(key);
      if (e != null && e.hasTrades()) {
        return;
      }
      if (e == null) {
        e = new Win();
      } else if (e.flat != null && e.flat.compareTo(flat) == 0) {
        continue;
      }
      int revision = corrections && e.revision != null ? e.revision + 1 : 0;
      e.flat = flat;
      e.revision = revision;
      windows.put(key, e);
      if (s.emitEmpty) {
        collect(Rows.candle(s.names[i], x, size, e, revision));
      }
    }
    if (m.lastEmitted[i] != null && to >= m.lastEmitted[i]) {
      m.lastClose[i] = flat;
    }
  }

  /**
   * Emit, in window order, every not yet emitted window with trades up to start `due`, each
   * preceded by the empty windows of the gap before it (flat at the previous close). Empty
   * windows after the last window with trades wait for the next one (as the reference does).
   */
  private void emitUpTo(Spec s, int i, MarketClock m, MapView<Long, Win> windows, long due)
      throws Exception {
    if (m.seqStart[i] == null || m.maxPending[i] == null) {
      return;
    }
    long size = s.sizeUs[i];
    long bound = Math.min(due, m.maxPending[i]);
    long x = m.lastEmitted[i] == null ? m.seqStart[i] : m.lastEmitted[i] + size;
    for (; x <= bound; x += size) {
      long key = key(x, i);
      Win w = windows.get(key);
      if (w == null || !w.hasTrades()) {
        continue;
      }
      if (m.lastEmitted[i] != null) {
        emitGap(s, i, m, windows, m.lastEmitted[i] + size, x - size);
      }
      w.revision = 0;
      windows.put(key, w);
      collect(Rows.candle(s.names[i], x, size, w, 0));
      m.lastClose[i] = w.close;
      m.lastEmitted[i] = x;
      if (i == s.finest) {
        fold(s, m, windows, x, w);
      }
    }
  }

  private void emitGap(Spec s, int i, MarketClock m, MapView<Long, Win> windows, long from, long to)
      throws Exception {
    long size = s.sizeUs[i];
    for (long x = from; x <= to; x += size) {
      Win e = new Win();
      e.flat = m.lastClose[i];
      e.revision = 0;
      windows.put(key(x, i), e);
      if (s.emitEmpty) {
        collect(Rows.candle(s.names[i], x, size, e, 0));
      }
    }
  }

  /** Drop windows no trade can reach any more: end + grace + allowed lateness <= clock. */
  private void purge(Spec s, int i, MarketClock m, MapView<Long, Win> windows, long clock)
      throws Exception {
    if (m.seqStart[i] == null || m.lastEmitted[i] == null) {
      return;
    }
    long size = s.sizeUs[i];
    long limit = alignDown(clock - s.graceUs[i] - s.latenessUs - size, size);
    limit = Math.min(limit, m.lastEmitted[i]);
    long x = m.purgedTo[i] == null ? m.seqStart[i] : m.purgedTo[i];
    for (; x <= limit; x += size) {
      windows.remove(key(x, i));
    }
    if (m.purgedTo[i] == null || x > m.purgedTo[i]) {
      m.purgedTo[i] = x;
    }
  }

  /**
   * Arms interval i's idle-flush timer for the window starting at {@code start} (its deadline:
   * end + grace + idle delay), unless an earlier timer is armed. End-of-input rule
   * (docs/semantics.md): Flink 2.1's PTF timer service silently ignores a timer at or below the
   * current watermark (WritableInternalTimeContext.registerOnTimeInternal), so a deadline already
   * passed is armed at watermark + 1 instead: it fires at the next watermark, the final +infinity
   * watermark of a bounded run included. So {@code flushAtMs} only ever names a timer that exists;
   * an armed time at or below the watermark has already fired (or, in state written before this
   * rule, was never registered) and is armed again.
   */
  private void registerFlush(Spec s, int i, MarketClock m, TimeContext<Long> time, long start) {
    long deadlineUs = start + s.sizeUs[i] + s.graceUs[i] + s.idleUs;
    long ms = Math.floorDiv(deadlineUs + 999, 1000L);
    Long wm = time.currentWatermark();
    Long armed = m.flushAtMs[i];
    if (wm != null) {
      if (wm == Long.MAX_VALUE) {
        // After the final watermark no timer can fire: onTimer emits everything pending then.
        throw new IllegalStateException(
            "CandleFunction: a window of " + s.names[i] + " pending after the end of input");
      }
      ms = Math.max(ms, wm + 1);
      if (armed != null && armed <= wm) {
        armed = null;
      }
    }
    if (armed == null || ms < armed) {
      time.registerOnTime(ms);
      m.flushAtMs[i] = ms;
    }
  }

  private static void add(Win w, Trade t) {
    BigDecimal quote = t.quoteQuantity();
    if (w.open == null) {
      w.open = t.price;
      w.high = t.price;
      w.low = t.price;
      w.close = t.price;
      w.openTime = t.eventTimeUs;
      w.openId = t.tradeId;
      w.closeTime = t.eventTimeUs;
      w.closeId = t.tradeId;
      w.volume = BigDecimal.ZERO;
      w.quoteVolume = BigDecimal.ZERO;
      w.takerBuyVolume = BigDecimal.ZERO;
      w.takerBuyQuoteVolume = BigDecimal.ZERO;
      w.tradeCount = 0L;
      w.firstTradeId = t.firstRawId();
      w.lastTradeId = t.lastRawId();
      w.inverse = t.inverse();
      w.contractSize = t.contractSize;
      w.flat = null;
    } else {
      widen(w, t.price, t.eventTimeUs, t.tradeId, t.price, t.eventTimeUs, t.tradeId, t.price,
          t.price, t.firstRawId(), t.lastRawId());
    }
    w.volume = w.volume.add(t.quantity);
    w.quoteVolume = w.quoteVolume.add(quote);
    w.tradeCount += t.count();
    if (t.takerBuy()) {
      w.takerBuyVolume = w.takerBuyVolume.add(t.quantity);
      w.takerBuyQuoteVolume = w.takerBuyQuoteVolume.add(quote);
    }
  }

  /** Adds window `from`'s trades to window `into` (OHLCV composes exactly). */
  private static void merge(Win into, Win from) {
    if (into.open == null) {
      into.open = from.open;
      into.high = from.high;
      into.low = from.low;
      into.close = from.close;
      into.openTime = from.openTime;
      into.openId = from.openId;
      into.closeTime = from.closeTime;
      into.closeId = from.closeId;
      into.volume = from.volume;
      into.quoteVolume = from.quoteVolume;
      into.takerBuyVolume = from.takerBuyVolume;
      into.takerBuyQuoteVolume = from.takerBuyQuoteVolume;
      into.tradeCount = from.tradeCount;
      into.firstTradeId = from.firstTradeId;
      into.lastTradeId = from.lastTradeId;
      into.inverse = from.inverse;
      into.contractSize = from.contractSize;
      into.flat = null;
      return;
    }
    widen(into, from.open, from.openTime, from.openId, from.close, from.closeTime, from.closeId,
        from.high, from.low, from.firstTradeId, from.lastTradeId);
    into.volume = into.volume.add(from.volume);
    into.quoteVolume = into.quoteVolume.add(from.quoteVolume);
    into.takerBuyVolume = into.takerBuyVolume.add(from.takerBuyVolume);
    into.takerBuyQuoteVolume = into.takerBuyQuoteVolume.add(from.takerBuyQuoteVolume);
    into.tradeCount += from.tradeCount;
    into.firstTradeId = Math.min(into.firstTradeId, from.firstTradeId);
    into.lastTradeId = Math.max(into.lastTradeId, from.lastTradeId);
  }

  /**
   * Widens window w (with trades) by trades from open (time, id) to close (time, id), with these
   * extremes and raw id range: the order-independent part of adding a trade or a window.
   */
  private static void widen(Win w, BigDecimal open, long openTime, long openId, BigDecimal close,
      long closeTime, long closeId, BigDecimal high, BigDecimal low, long firstId, long lastId) {
    if (before(openTime, openId, w.openTime, w.openId)) {
      w.open = open;
      w.openTime = openTime;
      w.openId = openId;
    }
    if (before(w.closeTime, w.closeId, closeTime, closeId)) {
      w.close = close;
      w.closeTime = closeTime;
      w.closeId = closeId;
    }
    if (high.compareTo(w.high) > 0) {
      w.high = high;
    }
    if (low.compareTo(w.low) < 0) {
      w.low = low;
    }
    w.firstTradeId = Math.min(w.firstTradeId, firstId);
    w.lastTradeId = Math.max(w.lastTradeId, lastId);
  }

  private static boolean before(long time1, long id1, long time2, long id2) {
    return time1 < time2 || (time1 == time2 && id1 < id2);
  }

  private Spec spec(String text) {
    if (spec == null || !spec.text.equals(text)) {
      spec = Spec.parse(text);
    }
    return spec;
  }

  /** Window start and interval index in one map key (at most 16 intervals). */
  private static long key(long start, int i) {
    return start * 16 + i;
  }

  private static long alignDown(long us, long size) {
    return us - Math.floorMod(us, size);
  }
}
