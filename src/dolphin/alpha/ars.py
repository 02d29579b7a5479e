"""Alpha Rank Score (ARS): a live-weighted priority over candidate assets.

Score of one asset (unitless, in [0, 1 + max_reward_frac]):

    base  = (w_s * strength + w_r * responsiveness + w_a * book_alignment + w_e * edge) / (w_s + w_r + w_a + w_e)
    ARS   = base * depth_multiplier(q)

with every component in [0, 1]:

- ``strength``: signal strength (:func:`dolphin.alpha.signals.signal_strength`);
- ``responsiveness``: how well the asset follows the market mode;
- ``book_alignment`` = (1 + direction * WOBI) / 2: 1 when the book leans the trade's way
  (ask-heavy for a SHORT), 0 when it leans against it, 0.5 when balanced or FLAT;
- ``edge`` = clip(NEV_bps / edge_scale_bps, 0, 1).

Depth quality q in [0, 1] is a weighted mean of ``depth/(depth + depth_ref)`` (quote depth within
N bps of mid), ``spread_ref/(spread + spread_ref)`` (bps) and ``2**(-age/half_life)`` (book age, ms).
The multiplier is ``1 - max_penalty_frac * (1 - 2q)`` below q = 0.5 (thin book: down to -10 %) and
``1 + max_reward_frac * (2q - 1)`` above (deep book: up to +10 %). It increases with depth and
decreases with spread and age.

:class:`ArsRanker` keeps the assets ordered by (score descending, asset index ascending): ties are
broken deterministically by the lower index; NaN scores (not a candidate) sort last. Updating one
asset moves only that asset (O(distance) in a numba kernel), which is what keeps a book update +
re-rank of 400 assets in the microseconds.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dolphin.alpha.config import ArsConfig

__all__ = [
    "ArsBoard",
    "ArsRanker",
    "ars_params",
    "ars_score",
    "ars_scores",
    "book_alignment",
    "depth_multiplier",
    "depth_quality_frac",
]

# Layout of the float64 parameter vector built by ars_params().
P_W_S, P_W_R, P_W_A, P_W_E, P_EDGE_SCALE, P_DEPTH_REF, P_SPREAD_REF, P_AGE_HL, P_QWD, P_QWS, P_QWA, P_PEN, P_REW = range(13)


def ars_params(cfg: ArsConfig) -> np.ndarray:
    """The config as the float64 vector the numba kernels take."""
    return np.array(
        [
            cfg.w_strength,
            cfg.w_responsiveness,
            cfg.w_book_alignment,
            cfg.w_edge,
            cfg.edge_scale_bps,
            cfg.depth_ref_quote,
            cfg.spread_ref_bps,
            cfg.age_half_life_ms,
            cfg.q_w_depth,
            cfg.q_w_spread,
            cfg.q_w_age,
            cfg.max_penalty_frac,
            cfg.max_reward_frac,
        ],
        dtype=np.float64,
    )


@njit(cache=True, nogil=True)
def book_alignment(direction: int, wobi_: float) -> float:
    """(1 + direction * WOBI) / 2 in [0, 1]; 0.5 for FLAT (direction 0)."""
    return min(1.0, max(0.0, 0.5 * (1.0 + direction * wobi_)))


@njit(cache=True, nogil=True)
def depth_quality_frac(depth_quote: float, spread_bps: float, book_age_ms: float, p: np.ndarray) -> float:
    """Depth quality in [0, 1] from quote depth, spread (bps) and book age (ms); NaN inputs score 0."""
    qd = 0.0
    if depth_quote > 0.0:
        qd = depth_quote / (depth_quote + p[P_DEPTH_REF])
    qs = 0.0
    if spread_bps >= 0.0:
        qs = p[P_SPREAD_REF] / (spread_bps + p[P_SPREAD_REF])
    qa = 0.0
    if book_age_ms >= 0.0:
        qa = math.pow(2.0, -book_age_ms / p[P_AGE_HL])
    wsum = p[P_QWD] + p[P_QWS] + p[P_QWA]
    q = (p[P_QWD] * qd + p[P_QWS] * qs + p[P_QWA] * qa) / wsum
    return min(1.0, max(0.0, q))


@njit(cache=True, nogil=True)
def depth_multiplier(q: float, max_penalty_frac: float, max_reward_frac: float) -> float:
    """Multiplier in [1 - max_penalty_frac, 1 + max_reward_frac]; 1 at q = 0.5; increasing in q."""
    q = min(1.0, max(0.0, q))
    if q < 0.5:
        return 1.0 - max_penalty_frac * (1.0 - 2.0 * q)
    return 1.0 + max_reward_frac * (2.0 * q - 1.0)


@njit(cache=True, nogil=True)
def ars_score(
    strength: float,
    responsiveness: float,
    alignment: float,
    nev_bps: float,
    depth_quote: float,
    spread_bps: float,
    book_age_ms: float,
    p: np.ndarray,
) -> float:
    """ARS of one asset (unitless); NaN when strength or responsiveness is NaN (not a candidate)."""
    if math.isnan(strength) or math.isnan(responsiveness):
        return math.nan
    edge = 0.0
    if nev_bps > 0.0:
        edge = min(1.0, nev_bps / p[P_EDGE_SCALE])
    wsum = p[P_W_S] + p[P_W_R] + p[P_W_A] + p[P_W_E]
    base = (
        p[P_W_S] * min(1.0, max(0.0, strength))
        + p[P_W_R] * min(1.0, max(0.0, responsiveness))
        + p[P_W_A] * min(1.0, max(0.0, alignment))
        + p[P_W_E] * edge
    ) / wsum
    q = depth_quality_frac(depth_quote, spread_bps, book_age_ms, p)
    return base * depth_multiplier(q, p[P_PEN], p[P_REW])


@njit(cache=True, nogil=True)
def _ars_scores(strength, responsiveness, alignment, nev_bps, depth_quote, spread_bps, book_age_ms, p):
    n = strength.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = ars_score(
            strength[i], responsiveness[i], alignment[i], nev_bps[i], depth_quote[i], spread_bps[i], book_age_ms[i], p
        )
    return out


def ars_scores(
    strength: np.ndarray,
    responsiveness: np.ndarray,
    alignment: np.ndarray,
    nev_bps: np.ndarray,
    depth_quote: np.ndarray,
    spread_bps: np.ndarray,
    book_age_ms: np.ndarray,
    cfg: ArsConfig | np.ndarray,
) -> np.ndarray:
    """Vectorised :func:`ars_score` over assets (all arrays the same length)."""
    p = ars_params(cfg) if isinstance(cfg, ArsConfig) else cfg
    arrs = [
        np.ascontiguousarray(a, dtype=np.float64)
        for a in (strength, responsiveness, alignment, nev_bps, depth_quote, spread_bps, book_age_ms)
    ]
    return _ars_scores(*arrs, p)


# --------------------------------------------------------------------------- ranking


@njit(cache=True, nogil=True)
def _before(keys: np.ndarray, a: int, b: int) -> bool:
    ka = keys[a]
    kb = keys[b]
    return ka > kb or (ka == kb and a < b)


@njit(cache=True, nogil=True)
def _reposition(keys: np.ndarray, order: np.ndarray, pos: np.ndarray, i: int, new_key: float) -> int:
    """Set asset i's key and move it to its place; returns its new rank (0 = best)."""
    keys[i] = new_key
    p = pos[i]
    n = order.shape[0]
    while p > 0 and _before(keys, i, order[p - 1]):
        j = order[p - 1]
        order[p] = j
        pos[j] = p
        p -= 1
    while p < n - 1 and _before(keys, order[p + 1], i):
        j = order[p + 1]
        order[p] = j
        pos[j] = p
        p += 1
    order[p] = i
    pos[i] = p
    return p


class ArsRanker:
    """Priority queue of ``n_assets`` by ARS (descending), ties by asset index (ascending), NaN last."""

    __slots__ = ("scores", "_keys", "order", "pos")

    def __init__(self, n_assets: int) -> None:
        if n_assets < 1:
            raise ValueError(f"n_assets must be >= 1, got {n_assets}")
        self.scores = np.full(n_assets, np.nan)
        self._keys = np.full(n_assets, -np.inf)
        self.order = np.arange(n_assets, dtype=np.int64)
        self.pos = np.arange(n_assets, dtype=np.int64)

    @property
    def n_assets(self) -> int:
        return self.scores.shape[0]

    def set_all(self, scores: np.ndarray) -> None:
        """Replace every score and re-rank from scratch (after a weight change)."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != self.scores.shape:
            raise ValueError(f"expected {self.scores.shape[0]} scores, got shape {s.shape}")
        self.scores[:] = s
        self._keys[:] = np.where(np.isnan(s), -np.inf, s)
        idx = np.arange(s.shape[0])
        self.order[:] = np.lexsort((idx, -self._keys))
        self.pos[self.order] = idx

    def update(self, asset: int, score: float) -> int:
        """Set one asset's score; returns its new rank (0 = best). O(ranks moved)."""
        self.scores[asset] = score
        return int(_reposition(self._keys, self.order, self.pos, asset, -math.inf if score != score else score))

    def top(self, k: int) -> np.ndarray:
        """Asset indices of the best ``k`` candidates (NaN scores excluded)."""
        head = self.order[: min(k, self.order.shape[0])]
        return head[~np.isnan(self.scores[head])]

    def rank_of(self, asset: int) -> int:
        return int(self.pos[asset])


class ArsBoard:
    """ARS components of every asset plus the live weights; keeps an :class:`ArsRanker` in order.

    ``update`` re-scores one asset and moves only it; ``set_weights`` (live re-weighting from a new
    :class:`ArsConfig`) re-scores every asset and re-ranks from scratch.
    """

    __slots__ = (
        "params", "ranker", "active", "strength", "responsiveness", "alignment", "nev_bps", "depth_quote",
        "spread_bps", "book_age_ms",
    )

    def __init__(self, n_assets: int, cfg: ArsConfig) -> None:
        self.params = ars_params(cfg)
        self.ranker = ArsRanker(n_assets)
        self.active = np.zeros(n_assets, dtype=np.bool_)
        self.strength = np.full(n_assets, np.nan)
        self.responsiveness = np.full(n_assets, np.nan)
        self.alignment = np.full(n_assets, 0.5)
        self.nev_bps = np.zeros(n_assets)
        self.depth_quote = np.zeros(n_assets)
        self.spread_bps = np.full(n_assets, np.nan)
        self.book_age_ms = np.full(n_assets, np.nan)

    def update(
        self,
        asset: int,
        *,
        strength: float,
        responsiveness: float,
        alignment: float,
        nev_bps: float,
        depth_quote: float,
        spread_bps: float,
        book_age_ms: float,
    ) -> int:
        """Store one asset's components, re-score it and return its new rank (0 = best)."""
        self.active[asset] = True
        self.strength[asset] = strength
        self.responsiveness[asset] = responsiveness
        self.alignment[asset] = alignment
        self.nev_bps[asset] = nev_bps
        self.depth_quote[asset] = depth_quote
        self.spread_bps[asset] = spread_bps
        self.book_age_ms[asset] = book_age_ms
        s = ars_score(strength, responsiveness, alignment, nev_bps, depth_quote, spread_bps, book_age_ms, self.params)
        return self.ranker.update(asset, s)

    def drop(self, asset: int) -> None:
        """Remove an asset from the candidates (score NaN: ranked last); its components are kept."""
        self.active[asset] = False
        self.ranker.update(asset, math.nan)

    def set_weights(self, cfg: ArsConfig) -> None:
        """Apply new weights live: re-score all assets and re-rank."""
        self.params = ars_params(cfg)
        scores = _ars_scores(
            self.strength, self.responsiveness, self.alignment, self.nev_bps,
            self.depth_quote, self.spread_bps, self.book_age_ms, self.params,
        )
        self.ranker.set_all(np.where(self.active, scores, np.nan))

    def top(self, k: int) -> np.ndarray:
        return self.ranker.top(k)
