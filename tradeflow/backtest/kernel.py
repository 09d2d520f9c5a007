"""The compiled, path-dependent backtest loop over a grid of symbols and candles.

Inputs are (symbol x time) arrays: each symbol's series is contiguous, so a portfolio grid is
built with plain copies and the loop reads one short stream per symbol. Positions come out as
(time x symbol).

One loop serves one symbol (N = 1) and a portfolio with shared cash. Per candle ``t``:

1. open phase of the exit rules for positions held from before (``exit_step``);
2. orders decided at the close of ``t - 1`` fill at the open of ``t``: reductions first (and the
   closing half of a flip), then increases, so sales fund purchases; market orders pay the
   taker fee and adverse slippage; an increase is cut to what free cash allows, fees included;
   quantities come from the fill price, or (``size_on_close``) from the deciding close;
3. intrabar phase of the exit rules (also for positions entered at this open);
4. marking to the close;
5. decisions at the close of ``t`` (not on the last candle): a target that differs from the
   last one seen is capped (``cap_target``) and becomes the order for the next open.

A symbol without a candle at ``t`` does nothing at ``t``: its pending order waits for its next
candle and it is marked at its last close. Free cash is ``cash - 2 * debt`` where ``debt`` is
the entry value of open shorts: a short ties up its proceeds plus the same amount again, like
vectorbt, so no position, long or short, is ever bought on credit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradeflow.trading.exits import (
    ENTRY_PRICE,
    F_PRICE,
    F_QTY,
    F_REASON,
    F_TAKER,
    F_TIER,
    FILL_COLS,
    LOCK,
    QTY,
    SIDE,
    STATE_SIZE,
    apply_fill_nb,
    exit_step,
    release_lock,
    reset_state,
)
from tradeflow.trading.risk import cap_target
from tradeflow.trading.sizing import affordable_quantity, target_quantity

# Fill records.
OF_T, OF_SYM, OF_QTY, OF_PRICE, OF_FEE, OF_REASON, OF_TIER = range(7)
OF_COLS = 7
# Trade records (one per closing fill).
(TR_SYM, TR_ENTRY_T, TR_EXIT_T, TR_SIDE, TR_QTY, TR_ENTRY_PRICE, TR_EXIT_PRICE, TR_FEES, TR_PNL,
 TR_REASON, TR_TIER) = range(11)
TR_COLS = 11
# Per-symbol bookkeeping: candle of first entry, entry fees not yet attributed, short debt.
B_ENTRY_T, B_FEES, B_DEBT = range(3)
_OPEN_PHASE, _INTRABAR_PHASE = 1, 2
_SIGNAL = 0.0
# Counters are np.int64 in the loop (see simulate); plain ints when called from Python.
Index = int | np.int64
# equity, cash, positions, fills, trades, exit states, bookkeeping, last marks, candles in market
SimOutput = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                  np.ndarray, np.ndarray, int]


@njit(cache=True)
def _reserve(buf: np.ndarray, n: Index, need: int) -> np.ndarray:
    # Records are appended in place by the helpers; room for one candle is made up front.
    if n + need <= buf.shape[0]:
        return buf
    bigger = np.empty((max(buf.shape[0] * 2, n + need), buf.shape[1]), dtype=np.float64)
    # An explicit copy: a slice assignment drags in numba's slow-to-compile shape errors.
    for i in range(n):
        for j in range(buf.shape[1]):
            bigger[i, j] = buf[i, j]
    return bigger


@njit(cache=True)
def _log_fill(fills: np.ndarray, nf: Index, t: int, s: int, signed_qty: float, price: float,
              fee: float, reason: float, tier: float) -> Index:
    row = fills[nf]
    row[OF_T] = t
    row[OF_SYM] = s
    row[OF_QTY] = signed_qty
    row[OF_PRICE] = price
    row[OF_FEE] = fee
    row[OF_REASON] = reason
    row[OF_TIER] = tier
    return nf + 1


@njit(cache=True)
def _book_reduce(acct: np.ndarray, book: np.ndarray, s: int, side: float, dq: float,
                 qty_before: float, entry_px: float, price: float, fee: float, t: int,
                 reason: float, tier: float, closed: bool, trades: np.ndarray, nt: Index) -> Index:
    # Entry fees are attributed to closing fills pro rata, like vectorbt's exit trades.
    part = book[s, B_FEES] if closed else book[s, B_FEES] * (dq / qty_before)
    book[s, B_FEES] -= part
    if side > 0:
        acct[0] += dq * price - fee
    else:
        acct[0] -= dq * price + fee
        book[s, B_DEBT] -= dq * entry_px
    row = trades[nt]
    row[TR_SYM] = s
    row[TR_ENTRY_T] = book[s, B_ENTRY_T]
    row[TR_EXIT_T] = t
    row[TR_SIDE] = side
    row[TR_QTY] = dq
    row[TR_ENTRY_PRICE] = entry_px
    row[TR_EXIT_PRICE] = price
    row[TR_FEES] = part + fee
    row[TR_PNL] = side * (price - entry_px) * dq - part - fee
    row[TR_REASON] = reason
    row[TR_TIER] = tier
    if closed:
        book[s, B_FEES] = 0.0
        book[s, B_DEBT] = 0.0
        book[s, B_ENTRY_T] = -1.0
    return nt + 1


@njit(cache=True)
def _run_exits(st: np.ndarray, s: int, t: int, o: float, h: float, lo: float, slip: float,
               params: np.ndarray, tp_pct: np.ndarray, tp_frac: np.ndarray, phase: Index,
               out: np.ndarray, acct: np.ndarray, book: np.ndarray, taker: float, maker: float,
               fills: np.ndarray, nf: Index, trades: np.ndarray, nt: Index) -> tuple[Index, Index]:
    side = st[SIDE]
    qty_left = st[QTY]
    entry_px = st[ENTRY_PRICE]
    n = exit_step(st, o, h, lo, slip, params, tp_pct, tp_frac, phase, out)
    for k in range(n):
        dq = out[k, F_QTY]
        px = out[k, F_PRICE]
        fee = dq * px * (taker if out[k, F_TAKER] > 0.0 else maker)
        closed = dq >= qty_left
        nt = _book_reduce(acct, book, s, side, dq, qty_left, entry_px, px, fee, t,
                          out[k, F_REASON], out[k, F_TIER], closed, trades, nt)
        nf = _log_fill(fills, nf, t, s, -side * dq, px, fee, out[k, F_REASON], out[k, F_TIER])
        qty_left -= dq
    return nf, nt


@njit(cache=True)
def simulate(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
             valid: np.ndarray, target: np.ndarray, slip: np.ndarray, taker: float, maker: float,
             params: np.ndarray, tp_pct: np.ndarray, tp_frac: np.ndarray, max_position: float,
             max_total: float, cash0: float, size_on_close: bool) -> SimOutput:
    """Run the loop: equity, cash, positions, fills, trades, final states, candles in market.

    ``size_on_close`` sizes an order from the close it was decided at (what a live trader
    must do: it sends the order before the next open is known); otherwise from the fill
    price at the next open (vectorbt's convention).
    """
    n_s, n_t = close.shape
    state = np.zeros((n_s, STATE_SIZE), dtype=np.float64)
    for s in range(n_s):
        reset_state(state[s])
    book = np.zeros((n_s, 3), dtype=np.float64)
    book[:, B_ENTRY_T] = -1.0
    acct = np.array([cash0], dtype=np.float64)
    last_target = np.zeros(n_s, dtype=np.float64)
    pending = np.full(n_s, np.nan, dtype=np.float64)
    pending_eq = np.zeros(n_s, dtype=np.float64)
    pending_px = np.zeros(n_s, dtype=np.float64)
    expo = np.zeros(n_s, dtype=np.float64)
    mark = np.full(n_s, np.nan, dtype=np.float64)
    equity = np.empty(n_t, dtype=np.float64)
    cash = np.empty(n_t, dtype=np.float64)
    positions = np.empty((n_t, n_s), dtype=np.float64)
    fills = np.empty((256, OF_COLS), dtype=np.float64)
    trades = np.empty((256, TR_COLS), dtype=np.float64)
    # np.int64(...) rather than literals: numba would compile the helpers once per literal.
    nf: Index = np.int64(0)
    nt: Index = np.int64(0)
    open_phase: Index = np.int64(_OPEN_PHASE)
    intrabar_phase: Index = np.int64(_INTRABAR_PHASE)
    in_market = 0
    out = np.empty((tp_pct.shape[0] + 2, FILL_COLS), dtype=np.float64)
    # Per symbol and candle: open-phase exits, a reduction, an increase, intrabar exits.
    per_candle = n_s * (2 * tp_pct.shape[0] + 6)
    has_rules = tp_pct.shape[0] > 0 or not np.all(np.isnan(params))
    for t in range(n_t):
        if nf + per_candle > fills.shape[0]:
            fills = _reserve(fills, nf, per_candle)
        if nt + per_candle > trades.shape[0]:
            trades = _reserve(trades, nt, per_candle)
        for s in range(n_s):
            if has_rules and state[s, SIDE] != 0.0 and valid[s, t]:
                nf, nt = _run_exits(
                    state[s], s, t, open_[s, t], high[s, t], low[s, t], slip[s, t], params,
                    tp_pct, tp_frac, open_phase, out, acct, book, taker, maker, fills, nf,
                    trades, nt)
        # Reductions (and the closing half of a flip) first, so their cash funds increases.
        for s in range(n_s):
            p = pending[s]
            side = state[s, SIDE]
            if np.isnan(p) or side == 0.0 or not valid[s, t]:
                continue
            qty = state[s, QTY]
            px = open_[s, t] * (1.0 - side * slip[s, t])
            if p * side <= 0.0:
                dq = qty
            else:
                want = target_quantity(p, pending_eq[s], pending_px[s] if size_on_close else px)
                if want >= qty:
                    continue
                dq = qty - want
            fee = dq * px * taker
            closed = dq >= qty
            entry_px = state[s, ENTRY_PRICE]
            nt = _book_reduce(acct, book, s, side, dq, qty, entry_px, px, fee, t,
                              _SIGNAL, -1.0, closed, trades, nt)
            nf = _log_fill(fills, nf, t, s, -side * dq, px, fee, _SIGNAL, -1.0)
            apply_fill_nb(state[s], -side * dq, px)
            if p * side >= 0.0:
                pending[s] = np.nan
        for s in range(n_s):
            p = pending[s]
            if np.isnan(p) or not valid[s, t]:
                continue
            pending[s] = np.nan
            if p == 0.0:
                continue
            sgn = 1.0 if p > 0.0 else -1.0
            side = state[s, SIDE]
            if (side != 0.0 and side != sgn) or state[s, LOCK] == sgn:
                continue
            px = open_[s, t] * (1.0 + sgn * slip[s, t])
            size_px = pending_px[s] if size_on_close else px
            dq = target_quantity(p, pending_eq[s], size_px) - state[s, QTY]
            if dq <= 0.0:
                continue
            free = acct[0] - 2.0 * np.sum(book[:, B_DEBT])
            cost = dq * px
            fee = cost * taker
            total = cost + fee
            if total > free:
                dq = affordable_quantity(free, px, taker)
                if dq <= 0.0:
                    continue
                cost = free / (1.0 + taker)
                fee = free - cost
                total = free
            if sgn > 0.0:
                acct[0] -= total
            else:
                acct[0] += cost - fee
                book[s, B_DEBT] += cost
            book[s, B_FEES] += fee
            if book[s, B_ENTRY_T] < 0.0:
                book[s, B_ENTRY_T] = t
            nf = _log_fill(fills, nf, t, s, sgn * dq, px, fee, _SIGNAL, -1.0)
            apply_fill_nb(state[s], sgn * dq, px)
        for s in range(n_s):
            if has_rules and state[s, SIDE] != 0.0 and valid[s, t]:
                nf, nt = _run_exits(
                    state[s], s, t, open_[s, t], high[s, t], low[s, t], slip[s, t], params,
                    tp_pct, tp_frac, intrabar_phase, out, acct, book, taker, maker, fills, nf,
                    trades, nt)
        eq = acct[0]
        holding = False
        for s in range(n_s):
            if valid[s, t]:
                mark[s] = close[s, t]
            q = state[s, SIDE] * state[s, QTY]
            positions[t, s] = q
            if q != 0.0:
                eq += q * mark[s]
                holding = True
        if holding:
            in_market += 1
        equity[t] = eq
        cash[t] = acct[0]
        if t == n_t - 1 or not eq > 0.0:
            continue
        gross = 0.0
        for s in range(n_s):
            if np.isnan(pending[s]):
                expo[s] = positions[t, s] * mark[s] / eq if positions[t, s] != 0.0 else 0.0
            else:
                expo[s] = pending[s]
            gross += abs(expo[s])
        for s in range(n_s):
            tg = target[s, t]
            if not valid[s, t] or np.isnan(tg):
                continue
            release_lock(state[s], tg)
            if tg == last_target[s]:
                continue
            last_target[s] = tg
            current = positions[t, s] * mark[s] / eq if positions[t, s] != 0.0 else 0.0
            others = gross - abs(expo[s])
            capped = cap_target(tg, current, others, max_position, max_total)
            pending[s] = capped
            pending_eq[s] = eq
            pending_px[s] = mark[s]
            expo[s] = capped
            gross = others + abs(capped)
    return equity, cash, positions, fills[:nf], trades[:nt], state, book, mark, in_market
