"""Ledger arithmetic without a database: client order ids, fee currencies, position books."""

from __future__ import annotations

import random

import pytest

from trader.ledger.accounting import (
    CLIENT_ID_PATTERN,
    Book,
    FeeKind,
    apply_fill_to,
    client_order_id,
    fee_kind,
    split_symbol,
)

KEY = ("momentum", "BTC/USDT", 1_700_000_040_000, "signal", 0)


def test_client_order_id_is_a_stable_function_of_the_decision() -> None:
    # Golden values: changing the scheme would make a restarted trader re-place orders that
    # are already on the exchange under the old ids.
    assert client_order_id(*KEY) == "tf-e260f0c18751ffcf81d8659a4dcc29b7"
    assert client_order_id("momentum", "BTC/USDT", 1_700_000_040_000, "exit", 1) == (
        "tf-27e1f1cf4e32a47c3c2f9abfa6d222ae")
    assert client_order_id(*KEY) == client_order_id(*KEY)


def test_client_order_id_differs_in_every_field_and_fits_binance() -> None:
    variants = [
        KEY,
        ("meanrev", *KEY[1:]),
        (KEY[0], "ETH/USDT", *KEY[2:]),
        (*KEY[:2], KEY[2] + 60_000, *KEY[3:]),
        (*KEY[:3], "exit", 0),
        (*KEY[:4], 1),
        # Fields that would collide if joined naively without separators.
        ("a", "b/c", 1, "signal", 11), ("a", "b/c", 11, "signal", 1),
    ]
    ids = [client_order_id(*v) for v in variants]
    assert len(set(ids)) == len(ids)
    for cid in ids:
        assert len(cid) <= 36 and CLIENT_ID_PATTERN.match(cid) and cid.startswith("tf-")


@pytest.mark.parametrize("bad", [("", "BTC/USDT", 0, "signal", 0),
                                 ("s", "", 0, "signal", 0),
                                 ("s", "BTC/USDT", 0, "signal", -1)])
def test_client_order_id_rejects_bad_keys(bad: tuple) -> None:
    with pytest.raises(ValueError):
        client_order_id(*bad)


def test_symbols_and_fee_currencies() -> None:
    assert split_symbol("BTC/USDT") == ("BTC", "USDT")
    assert split_symbol("BTC/USDT:USDT") == ("BTC", "USDT")
    for bad in ("BTCUSDT", "/USDT", "BTC/"):
        with pytest.raises(ValueError):
            split_symbol(bad)
    assert fee_kind("BTC/USDT", 0.1, "USDT") is FeeKind.QUOTE
    assert fee_kind("BTC/USDT", 0.1, None) is FeeKind.QUOTE
    assert fee_kind("BTC/USDT", 0.1, "btc") is FeeKind.BASE
    assert fee_kind("BTC/USDT", 0.0, "BTC") is FeeKind.QUOTE  # nothing paid, nothing to move
    assert fee_kind("BTC/USDT", 0.1, "BNB") is FeeKind.OTHER


def test_increase_reweights_and_reduction_realises() -> None:
    book = Book()
    book = apply_fill_to(book, "buy", 100.0, 1.0, 0.0, FeeKind.QUOTE).book
    book = apply_fill_to(book, "buy", 200.0, 3.0, 0.0, FeeKind.QUOTE).book
    assert (book.qty, book.avg_price, book.realized_pnl) == (4.0, 175.0, 0.0)
    effect = apply_fill_to(book, "sell", 250.0, 2.0, 0.5, FeeKind.QUOTE)
    assert effect.book.qty == 2.0 and effect.book.avg_price == 175.0
    assert effect.book.realized_pnl == 150.0 and effect.book.fees_paid == 0.5
    assert effect.cash_delta == 500.0 - 0.5


def test_a_sell_through_zero_opens_a_short_at_the_fill_price() -> None:
    book = apply_fill_to(Book(), "buy", 100.0, 1.0, 0.0, FeeKind.QUOTE).book
    book = apply_fill_to(book, "sell", 120.0, 3.0, 0.0, FeeKind.QUOTE).book
    assert (book.qty, book.avg_price, book.realized_pnl) == (-2.0, 120.0, 20.0)
    book = apply_fill_to(book, "buy", 110.0, 2.0, 0.0, FeeKind.QUOTE).book
    assert (book.qty, book.avg_price, book.realized_pnl) == (0.0, 0.0, 40.0)


def test_a_round_trip_of_float_noise_ends_exactly_flat() -> None:
    book = Book()
    for amount in (0.1, 0.2):
        book = apply_fill_to(book, "buy", 100.0, amount, 0.0, FeeKind.QUOTE).book
    book = apply_fill_to(book, "sell", 100.0, 0.3, 0.0, FeeKind.QUOTE).book
    assert book.qty == 0.0 and book.avg_price == 0.0


def test_a_base_fee_is_paid_in_coins_and_valued_at_the_fill_price() -> None:
    effect = apply_fill_to(Book(), "buy", 100.0, 1.0, 0.01, FeeKind.BASE)
    assert effect.book.qty == pytest.approx(0.99)
    assert effect.book.fees_paid == pytest.approx(1.0) and effect.fee_quote == pytest.approx(1.0)
    assert effect.cash_delta == -100.0  # the coins paid the fee, not the cash
    other = apply_fill_to(Book(), "buy", 100.0, 1.0, 0.01, FeeKind.OTHER)
    assert other.book.qty == 1.0 and other.book.fees_paid == 0.0 and other.cash_delta == -100.0


@pytest.mark.parametrize("args", [("hold", 1.0, 1.0, 0.0), ("buy", 0.0, 1.0, 0.0),
                                  ("buy", 1.0, 0.0, 0.0), ("buy", 1.0, 1.0, -0.1),
                                  ("buy", float("nan"), 1.0, 0.0)])
def test_bad_fills_are_refused(args: tuple) -> None:
    side, price, amount, fee = args
    with pytest.raises(ValueError):
        apply_fill_to(Book(), side, price, amount, fee, FeeKind.QUOTE)


def test_equity_identity_holds_for_random_fills_with_every_fee_kind() -> None:
    """cash + qty * mark == start + realised + unrealised - fees, whatever the fill sequence."""
    rng = random.Random(7)
    start = cash = 10_000.0
    book = Book()
    for _ in range(2_000):
        side = rng.choice(["buy", "sell"])
        price = rng.uniform(50, 150)
        amount = rng.uniform(0.01, 2.0)
        kind = rng.choice([FeeKind.QUOTE, FeeKind.BASE])
        fee = amount * 0.001 if kind is FeeKind.BASE else amount * price * 0.001
        effect = apply_fill_to(book, side, price, amount, fee, kind)
        book, cash = effect.book, cash + effect.cash_delta
        mark = rng.uniform(50, 150)
        unrealized = book.qty * (mark - book.avg_price)
        expected = start + book.realized_pnl + unrealized - book.fees_paid
        assert cash + book.qty * mark == pytest.approx(expected, rel=1e-9, abs=1e-6)
