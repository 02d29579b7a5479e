"""The Oracle's edge: order-book features of a live book, and one candidate's ARS + NEV decision.

Everything here composes the pure kernels of :mod:`features`, :mod:`ars` and :mod:`nev`; it keeps
no hidden state and reads no clock (``now_ns`` is passed in).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from dolphin.alpha.ars import ArsBoard, ars_params, ars_score, book_alignment
from dolphin.alpha.book import BookBuilder, BookResult, L2Book
from dolphin.alpha.config import AlphaConfig, BookConfig
from dolphin.alpha.features import (
    depth_decay_ratio,
    liquidity_imbalance_pct,
    microprice_ticks,
    spread_bps,
    wobi,
    wobi_weights,
)
from dolphin.alpha.nev import BUY, SELL, NevBreakdown, NevReason, nev_breakdown, nev_fixed_costs, walk_book_slippage_bps
from dolphin.alpha.ticks import TickGrid
from dolphin.data.binance_capture import CaptureMessage

__all__ = [
    "BookFeatures",
    "Candidate",
    "MicrostructureFeatures",
    "Oracle",
    "book_features",
    "evaluate_candidate",
    "taker_slippage_bps",
    "weights_for",
]


@dataclass(frozen=True, slots=True)
class MicrostructureFeatures:
    """What the survival controller's microstructure layer reads: depth decay, book age, jitter."""

    depth_decay_ratio: float  # [0, 1]
    book_age_ns: int  # -1 when the book never updated
    update_jitter_ns: float  # NaN until two intervals were seen


@dataclass(frozen=True, slots=True)
class BookFeatures:
    """Order-book features of one book at one instant (units in the names)."""

    synced: bool
    best_bid_ticks: int
    best_ask_ticks: int
    tick_size: float
    wobi: float  # [-1, 1]
    liquidity_imbalance_pct: float  # [-100, 100]
    microprice_ticks: float
    spread_ticks: int
    spread_bps: float
    bid_depth_quote: float  # within liquidity_band_bps of mid
    ask_depth_quote: float
    micro: MicrostructureFeatures


def weights_for(cfg: BookConfig) -> np.ndarray:
    """The WOBI level weights of the config (explicit list, else geometric decay)."""
    if cfg.wobi_weights:
        return np.asarray(cfg.wobi_weights, dtype=np.float64)
    return wobi_weights(cfg.wobi_levels, cfg.wobi_decay)


def book_features(builder: BookBuilder, now_ns: int, cfg: BookConfig, weights: np.ndarray | None = None) -> BookFeatures:
    """Compute every order-book feature of ``builder``'s book at local time ``now_ns``."""
    book = builder.book
    w = weights_for(cfg) if weights is None else weights
    age = builder.clock.book_age_ns(now_ns)
    jit = builder.clock.jitter_ns
    if not (builder.is_synced and book.n_bid and book.n_ask):
        return BookFeatures(
            False, -1, -1, book.tick_size, 0.0, 0.0, math.nan, 0, math.nan, 0.0, 0.0,
            MicrostructureFeatures(0.0, age, jit),
        )
    bb, ba = book.best_bid_ticks, book.best_ask_ticks
    n = w.shape[0]
    wo = wobi(book.bid_qty_view(n), book.ask_qty_view(n), w)
    bd, ad = book.depth_within_bps_quote(cfg.liquidity_band_bps)
    nb, na = book.depth_within_bps_quote(cfg.depth_decay_near_bps)
    fb, fa = book.depth_within_bps_quote(cfg.depth_decay_far_bps)
    return BookFeatures(
        True,
        bb,
        ba,
        book.tick_size,
        wo,
        liquidity_imbalance_pct(bd, ad),
        microprice_ticks(float(bb), float(ba), book.best_bid_qty, book.best_ask_qty),
        ba - bb,
        spread_bps(float(bb), float(ba)),
        bd,
        ad,
        MicrostructureFeatures(depth_decay_ratio(nb + na, fb + fa), age, jit),
    )


WALK_LEVELS = 200  # levels a taker leg's book walk reads (an order deeper than that is INVALID_INPUT)


def taker_slippage_bps(book: L2Book, side: int, order_qty: float) -> float:
    """Slippage (bps of the touch) of a market order on ``side`` (+1 buys into the asks, -1 sells into
    the bids) of ``order_qty`` base units; NaN when the walked levels cannot fill it."""
    ticks, qty = book.ask_levels(WALK_LEVELS) if side > 0 else book.bid_levels(WALK_LEVELS)
    return walk_book_slippage_bps(ticks, qty, order_qty)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One asset's trade candidate: ARS priority and the NEV decision with its reason."""

    asset: int
    direction: int
    ars: float
    nev: NevBreakdown

    @property
    def proposed(self) -> bool:
        return self.nev.proposed


def evaluate_candidate(
    asset: int,
    direction: int,
    strength: float,
    responsiveness: float,
    edge_bps: float,
    feats: BookFeatures,
    builder: BookBuilder,
    order_qty: float,
    cfg: AlphaConfig,
    params: np.ndarray | None = None,
) -> Candidate:
    """ARS and NEV of one candidate for ``order_qty`` (base units).

    Slippage is per leg and only for taker legs (a maker leg rests at the touch and walks nothing):
    the entry trades the direction's side (a SHORT sells into the bids), the exit the opposite side
    (the SHORT buys back into the asks); each taker leg walks its own side of the live book (up to
    :data:`WALK_LEVELS` levels; NaN -> ``INVALID_INPUT`` when they cannot fill it). Both legs pay the
    current spread (the exit's future spread is estimated by today's).
    """
    book = builder.book
    nc = cfg.nev
    synced = feats.synced
    entry_slip = exit_slip = 0.0  # maker legs (ignored by nev_breakdown)
    if direction == BUY or direction == SELL:
        if nc.entry_liquidity == "taker":
            entry_slip = taker_slippage_bps(book, direction, order_qty) if synced else math.nan
        if nc.include_exit and nc.exit_liquidity == "taker":
            exit_slip = taker_slippage_bps(book, -direction, order_qty) if synced else math.nan
    nev = nev_breakdown(
        edge_bps,
        direction,
        spread_bps=feats.spread_bps,
        slippage_bps=entry_slip,
        cfg=nc,
        exit_spread_bps=feats.spread_bps,
        exit_slippage_bps=exit_slip,
    )
    if not synced and nev.reason != NevReason.INVALID_INPUT:
        # no book: maker legs need no walk, but there is no touch to rest at either
        nev = NevBreakdown(nev.edge_bps, nev.fee_bps, nev.half_spread_bps, nev.slippage_bps, nev.tax_bps, math.nan,
                           False, NevReason.INVALID_INPUT)  # fmt: skip
    p = ars_params(cfg.ars) if params is None else params
    age_ms = feats.micro.book_age_ns / 1e6 if feats.micro.book_age_ns >= 0 else math.nan
    db, da = book.depth_within_bps_quote(cfg.ars.depth_band_bps) if feats.synced else (0.0, 0.0)
    depth = db + da
    score = ars_score(
        strength,
        responsiveness,
        book_alignment(direction, feats.wobi),
        nev.nev_bps if math.isfinite(nev.nev_bps) else 0.0,
        depth,
        feats.spread_bps,
        age_ms,
        p,
    )
    return Candidate(asset, direction, score, nev)


class Oracle:
    """Per-asset books, the ARS board and the NEV gate, wired for one process (live or replay).

    The owner routes each asset's capture/websocket messages with :meth:`on_book_message` and the
    scanner's per-bar signal with :meth:`on_signal`; :meth:`candidates` returns the best ``k``
    candidates with their NEV decision (proposed or not, with the reason). Nothing here reads a
    clock: ``now_ns`` is passed in.

    The ranking board's edge term is a per-asset NEV estimate (edge - fees - tax - half spread on the
    taker legs, from the current book at each re-score; a few float operations), not the gross edge.
    It leaves out only the order-size slippage, so it is an upper bound of the NEV that
    :meth:`candidates` computes per order, and the board ARS an upper bound of the refined ARS.
    """

    def __init__(self, n_assets: int, cfg: AlphaConfig, grids: list[TickGrid | None] | None = None) -> None:
        bc = cfg.book
        fixed = TickGrid.from_tick_size(bc.tick_size) if bc.tick_size else None
        self.cfg = cfg
        self.weights = weights_for(bc)
        self.builders = [
            BookBuilder(
                grid=(grids[i] if grids is not None else fixed),
                max_buffer=bc.max_buffer_diffs,
                jitter_alpha=bc.jitter_alpha,
            )
            for i in range(n_assets)
        ]
        self.board = ArsBoard(n_assets, cfg.ars)
        self.direction = np.zeros(n_assets, dtype=np.int8)
        self.edge_bps = np.zeros(n_assets)
        # Book-independent NEV terms per direction (index direction + 1): fees, tax, taker legs.
        costs = {d: nev_fixed_costs(d, cfg.nev) for d in (SELL, BUY)}
        self._fee = (costs[SELL][0], 0.0, costs[BUY][0])
        self._tax = (costs[SELL][1], 0.0, costs[BUY][1])
        self._half_spread_mult = 0.5 * costs[SELL][2]  # taker legs do not depend on the direction

    @property
    def params(self) -> np.ndarray:
        """The ARS weights in use: the board's, so that a live ``board.set_weights`` re-weights the
        per-order scoring too (a copy taken here once kept scoring with the old weights)."""
        return self.board.params

    def _rescore(self, asset: int, now_ns: int) -> None:
        b = self.builders[asset]
        board = self.board
        d = int(self.direction[asset])
        if d == 0 or not b.is_synced:
            board.drop(asset)
            return
        feats = book_features(b, now_ns, self.cfg.book, self.weights)
        db, da = b.book.depth_within_bps_quote(self.cfg.ars.depth_band_bps)
        age = feats.micro.book_age_ns
        # NEV without the order-size slippage (same arithmetic as nev_breakdown with zero slippage;
        # NaN spread on a taker leg -> NaN -> edge term 0); refined per order in candidates().
        hs = self._half_spread_mult * feats.spread_bps if self._half_spread_mult else 0.0
        nev_est = float(self.edge_bps[asset]) - self._fee[d + 1] - hs - 0.0 - self._tax[d + 1]
        board.update(
            asset,
            strength=float(board.strength[asset]),
            responsiveness=float(board.responsiveness[asset]),
            alignment=book_alignment(d, feats.wobi),
            nev_bps=nev_est,
            depth_quote=db + da,
            spread_bps=feats.spread_bps,
            book_age_ms=age / 1e6 if age >= 0 else math.nan,
        )

    def on_book_message(self, asset: int, msg: CaptureMessage) -> BookResult | None:
        """Feed one book message of ``asset``; re-scores the asset after a book change."""
        res = self.builders[asset].on_message(msg)
        if res is not None and self.direction[asset] != 0:
            self._rescore(asset, msg.local_ts_ns)
        return res

    def on_signal(
        self, asset: int, direction: int, strength: float, responsiveness: float, edge_bps: float, now_ns: int
    ) -> None:
        """The scanner's view of ``asset`` for this bar (direction 0 removes it from the candidates)."""
        self.direction[asset] = direction
        self.edge_bps[asset] = edge_bps
        self.board.strength[asset] = strength if direction != 0 else math.nan
        self.board.responsiveness[asset] = responsiveness
        self._rescore(asset, now_ns)

    def candidates(
        self, k: int, now_ns: int, order_qty: float | np.ndarray, *, max_evaluations: int | None = None
    ) -> list[Candidate]:
        """The best ``k`` candidates with their NEV decision; ``order_qty`` in base units (per asset).

        Order: proposed candidates first, each group by refined ARS (descending; ties by asset index).
        The board is walked best-first and each asset evaluated for its order (slippage per taker
        leg, book age at ``now_ns``). The board ARS is an upper bound of the refined one, so the walk
        stops once ``k`` proposed candidates beat the next board score (exact top ``k`` proposed).
        An asset whose board NEV estimate cannot be proposed is only evaluated while fewer than ``k``
        candidates are held (it can only fill a slot). At most ``max_evaluations`` assets are
        evaluated (default ``max(4k, k + 32)``: bounded work per call whatever the number of assets).
        """
        if k < 1:
            return []
        qty = np.broadcast_to(np.asarray(order_qty, dtype=np.float64), (len(self.builders),))
        limit = max(4 * k, k + 32) if max_evaluations is None else max(k, max_evaluations)
        ranker = self.board.ranker
        scores = ranker.scores
        board_nev = self.board.nev_bps
        min_nev = self.cfg.nev.min_nev_bps
        out: list[Candidate] = []
        best_proposed: list[float] = []  # min-heap of the best k proposed refined ARS
        for a in ranker.order:
            a = int(a)
            s = scores[a]
            if s != s:  # NaN: no candidates further down
                break
            if len(best_proposed) == k and best_proposed[0] > s:
                break  # no remaining asset can reach the k proposed ones
            if len(out) >= k and not (board_nev[a] > min_nev):
                continue  # can never be proposed; only a slot filler
            if len(out) >= limit:
                break
            c = self._evaluate(a, now_ns, float(qty[a]))
            out.append(c)
            if c.proposed:
                if len(best_proposed) < k:
                    heapq.heappush(best_proposed, c.ars)
                elif c.ars > best_proposed[0]:
                    heapq.heapreplace(best_proposed, c.ars)
        out.sort(key=lambda c: (not c.proposed, -c.ars, c.asset))
        return out[:k]

    def _evaluate(self, asset: int, now_ns: int, order_qty: float) -> Candidate:
        b = self.builders[asset]
        feats = book_features(b, now_ns, self.cfg.book, self.weights)
        return evaluate_candidate(
            asset,
            int(self.direction[asset]),
            float(self.board.strength[asset]),
            float(self.board.responsiveness[asset]),
            float(self.edge_bps[asset]),
            feats,
            b,
            order_qty,
            self.cfg,
            self.params,
        )
