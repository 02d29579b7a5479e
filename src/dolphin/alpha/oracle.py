"""The Oracle's edge: order-book features of a live book, and one candidate's ARS + NEV decision.

Everything here composes the pure kernels of :mod:`features`, :mod:`ars` and :mod:`nev`; it keeps
no hidden state and reads no clock (``now_ns`` is passed in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dolphin.alpha.ars import ArsBoard, ars_params, ars_score, book_alignment
from dolphin.alpha.book import BookBuilder, BookResult
from dolphin.alpha.config import AlphaConfig, BookConfig
from dolphin.alpha.features import (
    depth_decay_ratio,
    liquidity_imbalance_pct,
    microprice_ticks,
    spread_bps,
    wobi,
    wobi_weights,
)
from dolphin.alpha.nev import NevBreakdown, nev_breakdown, walk_book_slippage_bps
from dolphin.alpha.ticks import TickGrid
from dolphin.data.binance_capture import CaptureMessage

__all__ = [
    "BookFeatures",
    "Candidate",
    "MicrostructureFeatures",
    "Oracle",
    "book_features",
    "evaluate_candidate",
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
    """ARS and NEV of one candidate; the taker slippage walks the live book for ``order_qty`` (base units)."""
    book = builder.book
    if direction < 0:  # entry sells into the bids
        ticks, qty = book.bid_levels(200)
    else:
        ticks, qty = book.ask_levels(200)
    slip = walk_book_slippage_bps(ticks, qty, order_qty) if feats.synced else math.nan
    nev = nev_breakdown(edge_bps, direction, spread_bps=feats.spread_bps, slippage_bps=slip, cfg=cfg.nev)
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
    """

    def __init__(self, n_assets: int, cfg: AlphaConfig, grids: list[TickGrid | None] | None = None) -> None:
        bc = cfg.book
        fixed = TickGrid.from_tick_size(bc.tick_size) if bc.tick_size else None
        self.cfg = cfg
        self.weights = weights_for(bc)
        self.params = ars_params(cfg.ars)
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
        board.update(
            asset,
            strength=float(board.strength[asset]),
            responsiveness=float(board.responsiveness[asset]),
            alignment=book_alignment(d, feats.wobi),
            nev_bps=float(self.edge_bps[asset]),  # refined per order in candidates()
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

    def candidates(self, k: int, now_ns: int, order_qty: float | np.ndarray) -> list[Candidate]:
        """The best ``k`` assets by ARS with their NEV decision; ``order_qty`` in base units (per asset)."""
        out = []
        qty = np.broadcast_to(np.asarray(order_qty, dtype=np.float64), (len(self.builders),))
        for asset in self.board.top(k):
            a = int(asset)
            b = self.builders[a]
            feats = book_features(b, now_ns, self.cfg.book, self.weights)
            out.append(
                evaluate_candidate(
                    a,
                    int(self.direction[a]),
                    float(self.board.strength[a]),
                    float(self.board.responsiveness[a]),
                    float(self.edge_bps[a]),
                    feats,
                    b,
                    float(qty[a]),
                    self.cfg,
                    self.params,
                )
            )
        return out
