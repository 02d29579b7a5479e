"""The Oracle on the book the agent trades: order-book candidates and placement confidence.

:class:`OracleBookFeed` gives the Oracle (``dolphin.alpha.oracle.Oracle``: one ``BookBuilder``
per instrument, integer ticks) the book the agent trades on, read from the agent's
NautilusTrader cache, so every feature is the Oracle's kernel (``dolphin.alpha.oracle.book_features``,
``dolphin.alpha.features``) on the same book the engine replays:

- L2 (the agent subscribes order-book deltas): the data engine's L2 book; the levels within
  ``band_bps`` of the touch (the widest band any feature reads: ``alpha.book.liquidity_band_bps``,
  ``depth_decay_far_bps``, ``alpha.ars.depth_band_bps``), and at least the first
  ``alpha.book.wobi_levels`` levels a side (WOBI's, wherever they lie), are loaded into the
  Oracle's book when the book changed since the last query. The deltas reach NautilusTrader in Binance sync order
  (``dolphin.data.nautilus.depth_in_sync_order``). ``source = "l2_depth"``.
- L1 (quotes only, no depth exists): the last ``QuoteTick`` is the whole book, one level a side:
  WOBI is the top-of-book size imbalance and depth is the touch only. ``source =
  "l1_top_of_book"`` (labelled in the report).

Book age is exact (query time - the book's last update); update jitter is sampled at the query
times. The agent binds its ports at start (``bind(strategy)``); nothing here reads a wall clock.
A taker leg's book walk is bounded by the loaded band: an order the band cannot fill is
``INVALID_INPUT``, as an unfillable walk is for the Oracle.

:class:`OracleBookSignals` (a ``SignalSource``) turns the book into Oracle candidates, once per
bar of each instrument:

    direction  = sign(WOBI)          when |WOBI| >= min_abs_wobi (else no candidate)
    strength   = |WOBI|
    edge_bps   = direction * (microprice - mid) / mid * 1e4    (Stoikov queue-weighted mid: the
                 book's own estimate of where the price goes next; no configured number)
    ARS, NEV   = ``dolphin.alpha.oracle.evaluate_candidate`` (maker entry, exit per
                 ``alpha.nev``, taker legs walk the live book for the order size)

A candidate is emitted only when the Oracle proposes it (NEV after fees > ``alpha.nev.min_nev_bps``);
every evaluation and its NEV reason is counted (:meth:`OracleBookSignals.summary`). A one-asset
book has no cross-section: responsiveness (the market-mode correlation) enters ARS as 1.

:class:`OracleMicrostructure` (a ``MicrostructureView``) gives the SmartPlacer its confidence:

    confidence(side) = book_alignment(side, WOBI) * q
    book_alignment   = (1 + side * WOBI) / 2              (0.5 when the side is unknown)
    q                = depth_quality_frac(depth within alpha.ars.depth_band_bps of mid (both
                       sides, quote), spread_bps, book age ms)   (ARS's depth quality, in [0, 1])

High when the book leans the order's way and is deep, tight and fresh (APEX steps in); low when
it leans against the order or is thin, wide or stale (the placer stands back). No book: 0.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from dolphin.alpha.ars import ars_params, book_alignment, depth_quality_frac
from dolphin.alpha.book import BookBuilder, BookSnapshot, SyncState
from dolphin.alpha.config import AlphaConfig
from dolphin.alpha.nev import NevReason
from dolphin.alpha.oracle import BookFeatures, Oracle, book_features, evaluate_candidate
from dolphin.alpha.ticks import TickGrid
from dolphin.execution.ports import Candidate

__all__ = [
    "L1_TOP_OF_BOOK",
    "L2_DEPTH",
    "OracleBookFeed",
    "OracleBookSignals",
    "OracleMicrostructure",
    "placement_confidence",
]

L2_DEPTH = "l2_depth"
L1_TOP_OF_BOOK = "l1_top_of_book"
NO_BOOK = "none"

class OracleBookFeed:
    """The Oracle's books of the agent's instruments, read from the agent's NautilusTrader cache."""

    def __init__(self, cfg: AlphaConfig) -> None:
        self.cfg = cfg
        # Every depth feature reads levels within this many bps of the touch; WOBI reads the first
        # `wobi_levels` levels, loaded also when they lie beyond it (a sparse book).
        self.band_bps = max(cfg.book.liquidity_band_bps, cfg.book.depth_decay_far_bps, cfg.ars.depth_band_bps)
        self._wobi_levels = int(cfg.book.wobi_levels)
        self.oracle: Oracle | None = None
        self.index: dict[str, int] = {}
        self.sources: list[str] = []
        self.loads = 0
        self._strategy: Any = None
        self._iids: list[Any] = []
        self._inc_raw: list[int] = []
        self._price_prec: list[int] = []
        self._size_prec: list[int] = []
        self._loaded: list[tuple[int, ...]] = []
        self._feats: list[tuple[tuple[int, tuple[int, int]], BookFeatures] | None] = []

    # ------------------------------------------------------------------ binding

    def bind(self, strategy: Any) -> None:
        """Attach to a started strategy: its instruments and books (cache) and its clock.

        The book is the data engine's L2 book when the strategy subscribes to order-book deltas
        (``subscribe_book``), else the strategy's last quote. Idempotent per strategy.
        """
        if self._strategy is strategy:
            return
        from nautilus_trader.model.identifiers import InstrumentId

        self._strategy = strategy
        conf = strategy.config
        ids = [str(s) for s in conf.instrument_ids]
        depth = bool(getattr(conf, "subscribe_book", False))
        self._iids = [InstrumentId.from_str(s) for s in ids]
        grids = []
        self._inc_raw, self._price_prec, self._size_prec = [], [], []
        for iid in self._iids:
            inst = strategy.cache.instrument(iid)
            if inst is None:
                raise KeyError(f"instrument {iid} is not in the strategy's cache: no tick grid for the Oracle book")
            grids.append(TickGrid.from_tick_size(str(inst.price_increment)))
            self._inc_raw.append(int(inst.price_increment.raw))
            self._price_prec.append(int(inst.price_precision))
            self._size_prec.append(int(inst.size_precision))
        n = len(ids)
        self.oracle = Oracle(n, self.cfg, grids) if n else None
        self.index = {s: i for i, s in enumerate(ids)}
        self.sources = [L2_DEPTH if depth else L1_TOP_OF_BOOK] * n
        self._loaded = [(-1, -1)] * n
        self._feats = [None] * n

    def now_ns(self) -> int:
        return self._strategy.clock.timestamp_ns() if self._strategy is not None else 0

    # ------------------------------------------------------------------ loading

    def _load(self, asset: int, snap: BookSnapshot | None, ts_last_ns: int) -> None:
        b = self.oracle.builders[asset]
        if snap is None:
            b.book.clear()
            b.state = SyncState.AWAIT_SNAPSHOT
            return
        b.book.load(snap)
        # The image is NautilusTrader's book (already in Binance sync order, or one quote): it is
        # in sync by construction unless it crosses.
        b.state = SyncState.AWAIT_SNAPSHOT if b.book.is_crossed() else SyncState.SYNCED
        if ts_last_ns > b.clock.last_ts_ns:
            b.clock.on_update(ts_last_ns)  # book age exact; jitter sampled at the query times
        self.loads += 1

    def _refresh_depth(self, asset: int) -> tuple[int, ...]:
        from nautilus_trader.model.enums import OrderSide
        from nautilus_trader.model.objects import Price, Quantity

        book = self._strategy.cache.order_book(self._iids[asset])
        if book is None:
            return (-1, -1)
        version = (int(book.update_count), int(book.ts_last))
        if version == self._loaded[asset]:
            return version
        self._loaded[asset] = version
        bb, ba = book.best_bid_price(), book.best_ask_price()
        if bb is None or ba is None:
            self._load(asset, None, version[1])
            return version
        inc, pp, sp = self._inc_raw[asset], self._price_prec[asset], self._size_prec[asset]
        f = self.band_bps * 1e-4
        # Levels a buy (sell) limit at the band's edge would cross: the asks (bids) within the band.
        asks = book.get_all_crossed_levels(OrderSide.BUY, Price(ba.as_double() * (1.0 + f), pp), sp)
        bids = book.get_all_crossed_levels(OrderSide.SELL, Price(bb.as_double() * (1.0 - f), pp), sp)
        # WOBI reads the first `wobi_levels` levels whatever their distance: on a sparse book they
        # lie beyond the band, and the top of book alone can lean the other way
        n = self._wobi_levels
        if len(asks) < n:
            asks = [(lv.price, Quantity(lv.size(), sp)) for lv in book.asks()[:n]]
        if len(bids) < n:
            bids = [(lv.price, Quantity(lv.size(), sp)) for lv in book.bids()[:n]]
        na, nb = len(asks), len(bids)
        snap = BookSnapshot(
            int(book.sequence),
            np.fromiter((p.raw // inc for p, _ in bids), np.int64, nb),
            np.fromiter((q.as_double() for _, q in bids), np.float64, nb),
            np.fromiter((p.raw // inc for p, _ in asks), np.int64, na),
            np.fromiter((q.as_double() for _, q in asks), np.float64, na),
            version[1],
        )
        self._load(asset, snap, version[1])
        return version

    def _refresh_quote(self, asset: int) -> tuple[int, ...]:
        q = self._strategy.cache.quote_tick(self._iids[asset])
        if q is None:
            return (-1, -1)
        # Several quotes share a millisecond (half of the shipped BTCUSDT quotes): the version is the
        # quote's content, not only its time, or a newer same-time quote would never be loaded.
        version = (0, int(q.ts_event), q.bid_price.raw, q.ask_price.raw, q.bid_size.raw, q.ask_size.raw)
        if version == self._loaded[asset]:
            return version
        self._loaded[asset] = version
        inc = self._inc_raw[asset]
        snap = BookSnapshot(
            -1,
            np.array([q.bid_price.raw // inc], dtype=np.int64),
            np.array([q.bid_size.as_double()]),
            np.array([q.ask_price.raw // inc], dtype=np.int64),
            np.array([q.ask_size.as_double()]),
            version[1],
        )
        self._load(asset, snap, version[1])
        return version

    # ------------------------------------------------------------------ features

    def asset(self, instrument_id: str) -> int | None:
        return self.index.get(instrument_id)

    def builder(self, asset: int) -> BookBuilder:
        return self.oracle.builders[asset]

    def features(self, asset: int, now_ns: int) -> BookFeatures:
        """The Oracle's book features of ``asset`` at ``now_ns`` (cached per book version and time)."""
        if self.sources[asset] == L2_DEPTH:
            version = self._refresh_depth(asset)
        else:
            version = self._refresh_quote(asset)
        key = (now_ns, version)
        hit = self._feats[asset]
        if hit is not None and hit[0] == key:
            return hit[1]
        f = book_features(self.oracle.builders[asset], now_ns, self.cfg.book, self.oracle.weights)
        self._feats[asset] = (key, f)
        return f

    def quality_frac(self, asset: int, f: BookFeatures) -> float:
        """ARS's depth quality q in [0, 1] of a synced book (depth within ``alpha.ars.depth_band_bps``)."""
        db, da = self.oracle.builders[asset].book.depth_within_bps_quote(self.cfg.ars.depth_band_bps)
        age = f.micro.book_age_ns
        age_ms = age / 1e6 if age >= 0 else math.nan
        return float(depth_quality_frac(db + da, f.spread_bps, age_ms, self.oracle.params))


# --------------------------------------------------------------------------- placement confidence


def placement_confidence(side: int, wobi: float, quality_frac: float) -> float:
    """``book_alignment(side, wobi) * quality_frac`` in [0, 1] (side 0: alignment 0.5)."""
    a = 0.5 if side == 0 else book_alignment(1 if side > 0 else -1, wobi)
    return min(1.0, max(0.0, a * quality_frac))


class OracleMicrostructure:
    """MicrostructureView over the Oracle's book: WOBI and the placement confidence (module doc)."""

    def __init__(self, feed: OracleBookFeed) -> None:
        self.feed = feed

    def bind(self, strategy: Any) -> None:
        self.feed.bind(strategy)

    def wobi(self, instrument_id: str) -> float | None:
        feed = self.feed
        i = feed.asset(instrument_id)
        if i is None:
            return None
        f = feed.features(i, feed.now_ns())
        return f.wobi if f.synced else None

    def depth_quote(self) -> float | None:
        """The L2 books' depth in quote (size within ``alpha.book.liquidity_band_bps`` of the mid on
        both sides, times the mid), read straight from NautilusTrader's book (its cumulative
        quantity to a price: no level is copied; loading the Oracle's book for it cost the L2
        backtest 46 % of its throughput); summed over the L2 books that have both sides. None
        before the feed is bound, while no book has both sides, or on L1 (a quote's touch sizes
        are no depth: they swing by 100x between quotes). The survival controller's L5 reads it as
        depth over its recent normal (``runtime.wiring.DepthRatio``)."""
        from nautilus_trader.model.enums import OrderSide
        from nautilus_trader.model.objects import Price

        feed = self.feed
        strategy = feed._strategy
        if strategy is None:
            return None
        b = feed.cfg.book.liquidity_band_bps * 1e-4
        total, seen = 0.0, False
        for i, source in enumerate(feed.sources):
            if source != L2_DEPTH:
                continue
            book = strategy.cache.order_book(feed._iids[i])
            if book is None:
                continue
            bb, ba = book.best_bid_price(), book.best_ask_price()
            if bb is None or ba is None:
                continue
            mid = 0.5 * (bb.as_double() + ba.as_double())
            pp = feed._price_prec[i]
            qty = (book.get_quantity_for_price(Price(mid * (1.0 + b), pp), OrderSide.BUY)
                   + book.get_quantity_for_price(Price(mid * (1.0 - b), pp), OrderSide.SELL))  # fmt: skip
            total += qty * mid
            seen = True
        return total if seen else None

    def confidence(self, instrument_id: str, side: int = 0) -> float:
        feed = self.feed
        i = feed.asset(instrument_id)
        if i is None:
            return 0.0
        f = feed.features(i, feed.now_ns())
        if not f.synced:
            return 0.0
        return placement_confidence(side, f.wobi, feed.quality_frac(i, f))


# --------------------------------------------------------------------------- candidates


class OracleBookSignals:
    """SignalSource: the Oracle's order-book candidates with NEV after fees (module doc)."""

    def __init__(
        self, feed: OracleBookFeed, cfg: AlphaConfig, *, min_abs_wobi: float, order_notional_quote: float
    ) -> None:
        if not (0.0 <= min_abs_wobi <= 1.0):
            raise ValueError(f"min_abs_wobi must be in [0, 1], got {min_abs_wobi}")
        self.feed = feed
        self.cfg = cfg
        self.min_abs_wobi = float(min_abs_wobi)
        self.order_notional_quote = float(order_notional_quote)
        self.params = ars_params(cfg.ars)
        self.bars = 0
        self.no_book = 0
        self.flat = 0
        self.evaluated = 0
        self.proposed = 0
        self.emitted = 0
        self.nev_reasons: dict[str, int] = {}
        self._edge_sum = 0.0
        self._edge_max = -math.inf
        self._cost_min = math.inf
        self._nev_max = -math.inf
        self._ars_sum = 0.0

    def bind(self, strategy: Any) -> None:
        self.feed.bind(strategy)

    def on_bar(
        self, instrument_id: str, ts_ns: int, open_: float, high: float, low: float, close: float, volume: float
    ) -> Sequence[Candidate]:
        self.bars += 1
        feed = self.feed
        i = feed.asset(instrument_id)
        if i is None:
            self.no_book += 1
            return ()
        f = feed.features(i, ts_ns)
        if not f.synced:
            self.no_book += 1
            return ()
        w = f.wobi
        if not abs(w) >= self.min_abs_wobi or w == 0.0:  # NaN (no size on a synced book) is flat too
            self.flat += 1
            return ()
        d = 1 if w > 0.0 else -1
        mid_ticks = 0.5 * (f.best_bid_ticks + f.best_ask_ticks)
        edge_bps = d * (f.microprice_ticks - mid_ticks) / mid_ticks * 1e4
        qty = self.order_notional_quote / (mid_ticks * f.tick_size)
        c = evaluate_candidate(i, d, abs(w), 1.0, edge_bps, f, feed.builder(i), qty, self.cfg, self.params)
        self.evaluated += 1
        nev = c.nev
        key = NevReason(nev.reason).name
        self.nev_reasons[key] = self.nev_reasons.get(key, 0) + 1
        self._edge_sum += edge_bps
        self._edge_max = max(self._edge_max, edge_bps)
        if math.isfinite(nev.nev_bps):
            self._cost_min = min(self._cost_min, edge_bps - nev.nev_bps)
            self._nev_max = max(self._nev_max, nev.nev_bps)
        if c.ars == c.ars:
            self._ars_sum += c.ars
        if not c.proposed:
            return ()
        self.proposed += 1
        self.emitted += 1
        return (Candidate(instrument_id, d, ts_ns, edge_bps, abs(w), "oracle_book"),)

    def label(self) -> str:
        srcs = sorted(set(self.feed.sources)) or [NO_BOOK]
        return (f"oracle book ({'+'.join(srcs)}): WOBI direction (|WOBI| >= {self.min_abs_wobi:g}), "
                "microprice edge, ARS, NEV after fees")  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """Deterministic counts and edge statistics for the report (finite numbers or None)."""
        n = self.evaluated

        def fin(x: float) -> float | None:
            return x if math.isfinite(x) else None

        out: dict[str, Any] = {
            "source": "+".join(sorted(set(self.feed.sources))) or NO_BOOK,
            "min_abs_wobi": self.min_abs_wobi,
            "order_notional_quote": self.order_notional_quote,
            "bars": self.bars,
            "no_book": self.no_book,
            "flat": self.flat,
            "evaluated": n,
            "proposed": self.proposed,
            "emitted": self.emitted,
            "nev_reasons": dict(sorted(self.nev_reasons.items())),
            "edge_bps_mean": self._edge_sum / n if n else None,
            "edge_bps_max": fin(self._edge_max),
            "cost_bps_min": fin(self._cost_min),
            "nev_bps_max": fin(self._nev_max),
            "ars_mean": self._ars_sum / n if n else None,
            "book_loads": self.feed.loads,
        }
        if n and not self.proposed:
            # from the reasons counted: an unfillable walk computes no cost, so it must not be
            # explained by fees ("min inf bps")
            why = []
            invalid = self.nev_reasons.get(NevReason.INVALID_INPUT.name, 0)
            low = self.nev_reasons.get(NevReason.NEV_NON_POSITIVE.name, 0)
            if low:
                why.append(
                    f"{low}: the book-implied edge (max {self._edge_max:.4f} bps) is below the round-trip cost "
                    f"after fees (min {self._cost_min:.2f} bps): NEV <= {self.cfg.nev.min_nev_bps:g}"
                )
            if invalid:
                why.append(f"{invalid}: the loaded book cannot fill the taker walk for the order size (INVALID_INPUT)")
            rest = n - low - invalid
            if rest > 0:
                why.append(f"{rest}: other reasons ({dict(sorted(self.nev_reasons.items()))})")
            out["why_none"] = "no candidate proposed; " + "; ".join(why)
        elif not n:
            out["why_none"] = "no bar had a synced book leaning past min_abs_wobi"
        return out
