"""The composition root of the execution plane: real components behind the agent's ports.

``dolphin backtest``, ``dolphin knee`` and ``dolphin live`` build their agent from here:

- :class:`SurvivalRiskView` (``RiskView`` + sensor sink): the real ``dolphin.survival``
  SurvivalController and AlphaBetSizer. Its clock is the NautilusTrader event time (simulated
  time in a backtest): every call carries the event's ``ts_ns``, the controller's clock is set to
  it and ``tick()`` runs once per ``survival.tick_ms`` of that time. Readings come from the run:
  book age / update jitter (L5, where a book stream exists), slippage drift (L6, realised vs
  expected fill prices), drawdown (L9, the agent's equity curve) and the order round-trip time
  (RTT lockdown, submit -> the venue's first answer as the LatencyModel delays it, or an order's
  age when it is still unanswered a TTL after its submission).
- :class:`AlphaNevModel`: ``dolphin.alpha.nev.nev_breakdown`` with ``cfg.alpha.nev``.
- :class:`OracleBarSignals`: ``dolphin.alpha.signals.entry_signals`` (vel_div rule, volatility
  gate, responsiveness) over the aligned bar panel; vel_div comes from the scanner
  (:func:`scan_vel_div`, ``dolphin.scan.sonar.Sonar`` run over the same aligned bars).
- L1 / L2 capture runs (one asset, no cross-section for vel_div): the Oracle's book
  (``dolphin.execution.oracle_book``: WOBI direction, microprice edge, ARS, NEV after fees) is the
  signal source, and its WOBI and depth quality the SmartPlacer's confidence.
- the kill flag: ``FileKillFlag`` on ``cfg.execution.kill_flag_path``.

Layers whose sensors a backtest cannot observe (grid quorum, ledger integrity, MC-Forewarner,
external and esoteric factors, ACB inputs, scan heartbeat on bars) are left out of a backtest's
controller by ``execution.backtest.survival_layers`` instead of being fed invented readings.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import msgspec
import numpy as np

from dolphin.alpha.config import AlphaConfig, NevConfig
from dolphin.alpha.features import UpdateClock
from dolphin.alpha.nev import nev_breakdown
from dolphin.alpha.signals import SignalReason, entry_signals, vol_threshold_static
from dolphin.core.config import ConfigError, DolphinConfig
from dolphin.core.paths import repo_root
from dolphin.execution.agent import AgentPorts
from dolphin.execution.oracle_book import OracleBookFeed, OracleBookSignals, OracleMicrostructure
from dolphin.execution.ports import Candidate, FileKillFlag, KillFlag, MemoryKillFlag, Posture
from dolphin.survival.clock import ManualClock
from dolphin.survival.config import SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.layers.builtin import SlippageTracker
from dolphin.survival.sizer import AlphaBetSizer

log = logging.getLogger(__name__)

__all__ = [
    "AlphaNevModel",
    "OracleBarSignals",
    "ScanUnavailable",
    "SurvivalRiskView",
    "backtest_survival_config",
    "build_bar_ports",
    "build_live_ports",
    "build_tick_ports",
    "catalog_lock",
    "ensure_catalog",
    "kill_flag_for",
    "map_posture",
    "ports_summary",
    "scan_vel_div",
    "tick_order_notional_quote",
]

# survival.posture.Posture is APEX=0 .. HIBERNATE=3; execution.ports.Posture is HIBERNATE=0 .. APEX=3.
_POSTURE_MAP = (Posture.APEX, Posture.STALKER, Posture.TURTLE, Posture.HIBERNATE)


def map_posture(survival_posture: int) -> Posture:
    return _POSTURE_MAP[int(survival_posture)]


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


# --------------------------------------------------------------------------- risk view


def backtest_survival_config(cfg: DolphinConfig, *, book: bool, leverage_override: float | None = None) -> SurvivalConfig:
    """The survival config of a backtest: only the layers whose sensors the run observes."""
    sc = cfg.survival
    names = set(cfg.execution.backtest.survival_layers)
    if not book:
        names.discard("L5_order_book")
    layers = tuple(spec for spec in sc.layers if spec.name in names)
    missing = names - {spec.name for spec in layers}
    if missing:
        raise ConfigError(f"config key 'execution.backtest.survival_layers' names unknown layers {sorted(missing)}")
    if not layers:  # e.g. only L5 on bars (no book stream): no world model to size on
        raise ConfigError(
            f"config key 'execution.backtest.survival_layers' = {list(cfg.execution.backtest.survival_layers)!r} "
            "leaves no survival layer for a run without an order book (L5 needs one)"
        )
    posture = sc.posture
    if leverage_override is not None:
        posture = msgspec.structs.replace(posture, apex_leverage=leverage_override, stalker_leverage=leverage_override)
    return msgspec.structs.replace(sc, layers=layers, posture=posture)


class DepthRatio:
    """L5's ``book_depth_ratio``: the book's depth over its own recent normal.

    Reference: an exponential average of the depth readings in event time (half-life
    ``half_life_s``); the ratio of a reading is taken against the reference before it. The first
    ``warmup`` readings only build the reference (no ratio: L5's depth keeps its healthy 1.0). A
    reading that is not a finite number >= 0 (no synced book) is skipped and counted. One reading
    per ``step_ns`` of event time at most (the feeder's rule)."""

    def __init__(self, half_life_s: float = 300.0, warmup: int = 30, step_s: float = 1.0) -> None:
        if not (half_life_s > 0 and warmup >= 1 and step_s > 0):
            raise ValueError(f"bad DepthRatio({half_life_s}, {warmup}, {step_s})")
        self.tau_ns = half_life_s * 1e9 / math.log(2.0)
        self.warmup = int(warmup)
        self.step_ns = int(step_s * 1e9)
        self.reference = math.nan
        self.readings = 0
        self.skipped = 0
        self._last_ns = 0
        self.last_ratio = math.nan

    def update(self, ts_ns: int, depth: float | None) -> float | None:
        if depth is None or not (0.0 <= depth < math.inf):
            self.skipped += 1
            return None
        ref = self.reference
        ratio = None
        if self.readings == 0 or not ref > 0.0:
            self.reference = depth
        else:
            if self.readings >= self.warmup:
                ratio = depth / ref
                self.last_ratio = ratio
            a = 1.0 - math.exp(-max(ts_ns - self._last_ns, 0) / self.tau_ns)
            self.reference = ref + a * (depth - ref)
        self._last_ns = ts_ns
        self.readings += 1
        return ratio


class SurvivalRiskView:
    """RiskView over the real SurvivalController, driven by NautilusTrader event time."""

    def __init__(self, cfg: SurvivalConfig, *, jitter_alpha: float = 0.05) -> None:
        """The order RTT fed to the controller is the measured one, in backtests as live: their
        engines deliver each command at its time + the LatencyModel's latency
        (``research.arrivals``), so the measured round trip is the model's."""
        self.cfg = cfg
        self.rtt_measured_max_ms = 0.0
        self._tick_ns = int(cfg.tick_ms) * 1_000_000
        self._last_tick_ns = 0
        self._now_ns = -(2**62)
        self._unsettled = False  # a reading came since the last tick (see _settled)
        self.clock: ManualClock | None = None
        self.controller: SurvivalController | None = None
        self.sizer: AlphaBetSizer | None = None
        self.slippage = SlippageTracker()
        self.book_clock = UpdateClock(jitter_alpha)
        self._peak = -math.inf
        self._last_dd = math.nan
        self.book_reading_step_ns = 50_000_000
        self._book_obs_ns = -(2**62)
        # L5's depth reading: () -> the book's depth (quote, both sides near the touch) or None;
        # set where a book exists (build_tick_ports, paper L2). None: L5's depth stays unread.
        self.depth_source: Callable[[], float | None] | None = None
        self.depth = DepthRatio()
        self._depth_obs_ns = -(2**62)
        self.readings: dict[str, int] = {}
        self._idx: dict[str, int] = {}

    def _start(self, ts_ns: int) -> SurvivalController:
        # The first event defines the start: staleness and the upgrade dwell count from it.
        self.clock = ManualClock(ts_ns)
        self.controller = SurvivalController(self.cfg, self.clock)
        self.sizer = AlphaBetSizer(self.cfg.sizer, self.controller, self.clock)
        self._idx = dict(self.controller.board.index)
        self._last_tick_ns = ts_ns
        self.controller.tick()
        return self.controller

    # ---- time
    def advance(self, ts_ns: int) -> SurvivalController:
        """Move the controller's clock to ``ts_ns`` (never back) and tick once per tick_ms."""
        if ts_ns <= self._now_ns:  # hot path: several events share one timestamp
            return self.controller  # type: ignore[return-value]
        ctl = self.controller
        if ctl is None:
            self._now_ns = ts_ns
            return self._start(ts_ns)
        self._now_ns = ts_ns
        self.clock.set_ns(ts_ns)
        if ts_ns - self._last_tick_ns >= self._tick_ns:
            self._last_tick_ns = ts_ns
            if ts_ns >= self.slippage.hold_until_ns and self.slippage.release(ts_ns):
                self._reobserve("slippage_drift_bps", self.slippage.reading_bps)
            self._unsettled = False
            ctl.tick()
        return ctl

    def _reobserve(self, name: str, value: float) -> None:
        idx = self._idx.get(name)
        if idx is not None and self.controller is not None:
            self.controller.observe_idx(idx, value)
            self.readings[name] = self.readings.get(name, 0) + 1

    # ---- RiskView
    def _settled(self, ts_ns: int) -> SurvivalController:
        """The controller at ``ts_ns`` with every reading so far evaluated. A reading is stored at
        once but evaluated by the next tick (once per ``tick_ms``); an entry sized before that
        would use the R_total and posture from before it (found in review 2026-12-06: an entry
        sized on the R_total from before its own bar's drawdown reading, up to 3.8x the STALKER
        allowance, or a full APEX entry where the controller was in HIBERNATE one tick later).
        So sizing ticks first when a reading came since the last tick: at the same time nothing
        loosens (recovery needs time; a lower target is taken at once; the dwell is unchanged),
        and a reading that changed nothing leaves the controller quiet (the tick is skipped).
        Only sizing pays for it: the per-event posture read stays a cached read (ticking after
        every 50 ms book reading cost L2 backtests 15 % of their throughput)."""
        ctl = self.advance(ts_ns)
        if self._unsettled:
            self._unsettled = False
            ctl.tick()
        return ctl

    def r_total(self, ts_ns: int) -> float:
        return self._settled(ts_ns).r_total

    def posture(self, ts_ns: int) -> Posture:
        if ts_ns <= self._now_ns:  # hot path: same timestamp, no tick due (== advance's early return)
            return _POSTURE_MAP[self.controller.posture]  # type: ignore[union-attr]
        return _POSTURE_MAP[self.advance(ts_ns).posture]

    def size_notional(self, capital: float, posture: Posture, r_total: float) -> float:
        # The sizer reads the controller's own R_total and posture: those of the agent's r_total()
        # call just before, which settled every reading so far (_settled).
        if self.sizer is None:
            return 0.0
        return self.sizer.size_entry(capital)

    @property
    def min_notional(self) -> float:
        """The venue's minimum order notional (``survival.sizer.venue_min_notional``)."""
        return float(self.cfg.sizer.venue_min_notional)

    def gross_notional(self, capital: float, posture: Posture, r_total: float) -> float:
        # (read right after size_notional: the same settled controller)
        if self.sizer is None:
            return 0.0
        return self.sizer.gross_allowance(capital)

    # ---- sensors (RiskSensors)
    def _observe(self, name: str, ts_ns: int, value: float) -> None:
        ctl = self.advance(ts_ns)
        idx = self._idx.get(name)
        if idx is None:  # no layer of this run reads the sensor
            return
        ctl.observe_idx(idx, value)
        self.readings[name] = self.readings.get(name, 0) + 1
        self._unsettled = True  # evaluated before the next sizing at this time (see _settled)

    def on_equity(self, ts_ns: int, equity: float) -> None:
        if equity > self._peak:
            self._peak = equity
        dd = 1.0 - equity / self._peak if self._peak > 0 else 1.0
        if dd < 0.0:
            dd = 0.0
        if dd != self._last_dd:  # a value sensor: an unchanged drawdown is not a new reading
            self._last_dd = dd
            self._observe("drawdown_frac", ts_ns, dd)
        elif ts_ns > self._now_ns:  # (advance returns at once for a time already seen)
            self.advance(ts_ns)

    def on_fill(self, ts_ns: int, side: int, expected_px: float, realised_px: float) -> None:
        if not (expected_px > 0.0):
            return
        drift = self.slippage.on_fill(side, expected_px, realised_px, ts_ns)
        self._observe("slippage_drift_bps", ts_ns, drift)

    def on_order_rtt(self, ts_ns: int, rtt_ms: float) -> None:
        if rtt_ms > self.rtt_measured_max_ms:
            self.rtt_measured_max_ms = rtt_ms
        self._observe("order_rtt_ms", ts_ns, rtt_ms)

    def on_book_update(self, ts_ns: int) -> None:
        # Jitter sees every update; the readings go out at most once per book_reading_step_ns
        # of event time (a book age error below the step, 50 ms vs L5's 200 ms deadband).
        self.book_clock.on_update(ts_ns)
        if ts_ns - self._book_obs_ns < self.book_reading_step_ns:
            return
        self._book_obs_ns = ts_ns
        self._observe("book_update", ts_ns, 1.0)
        j = self.book_clock.jitter_ns
        if j == j:  # NaN until two intervals were seen
            self._observe("book_jitter_ms", ts_ns, j / 1e6)
        src = self.depth_source
        if src is not None and ts_ns - self._depth_obs_ns >= self.depth.step_ns:
            self._depth_obs_ns = ts_ns
            ratio = self.depth.update(ts_ns, src())
            if ratio is not None:
                self._observe("book_depth_ratio", ts_ns, ratio)


# --------------------------------------------------------------------------- NEV


@dataclass
class AlphaNevModel:
    """NevModel over ``dolphin.alpha.nev.nev_breakdown`` (fees, tax, half spread on taker legs).

    The entry leg's liquidity follows the order (maker quote or taker); the exit leg is
    ``cfg.exit_liquidity``. A candidate that is not proposed (NEV <= ``min_nev_bps``, or invalid)
    returns ``min(nev, 0)`` so the agent never sends it; the reasons are counted.
    """

    cfg: NevConfig
    reasons: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._maker = msgspec.structs.replace(self.cfg, entry_liquidity="maker")
        self._taker = msgspec.structs.replace(self.cfg, entry_liquidity="taker")

    def nev_bps(self, candidate: Candidate, *, taker: bool, spread_bps: float) -> float:
        b = nev_breakdown(candidate.edge_bps, candidate.side, spread_bps=spread_bps, slippage_bps=0.0,
                          cfg=self._taker if taker else self._maker)  # fmt: skip
        key = b.reason.name
        self.reasons[key] = self.reasons.get(key, 0) + 1
        if b.proposed:
            return b.nev_bps
        return min(b.nev_bps, 0.0) if math.isfinite(b.nev_bps) else -math.inf


# --------------------------------------------------------------------------- signals


class ScanUnavailable(RuntimeError):
    """The scanner (``dolphin.scan``) is not installed in this build: no vel_div, no signals."""


def scan_vel_div(close: np.ndarray, mask: np.ndarray, ts_ns: np.ndarray, cfg: DolphinConfig) -> np.ndarray:
    """vel_div per bar from the scanner run over the aligned panel (N assets x T bars).

    With ``scan.regime.entries_need_attack`` (the default) a bar whose scan is VETO (the
    zero-trust gate failed, warm-up, no structure, unstable, universe change) gets NaN: the
    Oracle proposes nothing there. The number of such bars is logged.
    Raises :class:`ScanUnavailable` when ``dolphin.scan`` has no Sonar yet.
    """
    try:
        from dolphin.scan.record import ATTACK
        from dolphin.scan.sonar import Sonar
    except ImportError as exc:  # the scan plane is merged separately
        raise ScanUnavailable(f"dolphin.scan.sonar is not available ({exc}); no vel_div, no Oracle signals") from exc
    scfg = getattr(cfg, "scan", None)
    if scfg is None:
        from dolphin.scan.config import ScanConfig

        scfg = ScanConfig()
    # vel_div needs only the signal path (lambda_max and its velocities).
    scfg = msgspec.structs.replace(scfg, full_spectrum=False)
    n, t_n = close.shape
    sonar = Sonar(n, scfg)
    out = np.full(t_n, np.nan)
    closes_tn = np.ascontiguousarray(close.T)
    mask_tn = np.ascontiguousarray(mask.T)
    gated = scfg.regime.entries_need_attack
    veto = withheld = 0
    for t in range(t_n):
        rec = sonar.update(int(ts_ns[t]), closes_tn[t], mask_tn[t])
        if gated and rec.regime != ATTACK:
            veto += 1
            withheld += not math.isnan(rec.vel_div)
            continue
        out[t] = rec.vel_div
    if gated:
        log.info("scan: %d of %d bars VETO; vel_div withheld from the Oracle on them (%d had one)", veto, t_n, withheld)
    return out


class OracleBarSignals:
    """SignalSource: the Oracle's entry rules over an aligned bar panel, looked up per bar.

    ``direction/strength`` are ``entry_signals`` outputs (T, N); a bar of asset n closing at
    ``ts`` is column ``(ts - bar_ns - ts0) / bar_ns``. Every rule is trailing (no look-ahead),
    so computing the panel once equals computing it bar by bar. ``edge_bps`` =
    ``edge_scale_bps x strength`` (a configured scale, not a fitted estimate).
    """

    def __init__(
        self, columns: Mapping[str, int], ts0_ns: int, bar_ns: int,
        direction: np.ndarray, strength: np.ndarray, reason: np.ndarray, edge_scale_bps: float,
    ) -> None:  # fmt: skip
        self.col = dict(columns)
        self.ts0 = ts0_ns
        self.bar_ns = bar_ns
        self.direction = direction
        self.strength = strength
        self.reason = reason
        self.edge_scale_bps = edge_scale_bps
        self.emitted = 0
        self._cols: dict[str, tuple[list, list]] = {}  # instrument -> (direction, strength) column lists

    @classmethod
    def from_panel(
        cls, close: np.ndarray, mask: np.ndarray, ts_ns: np.ndarray, bar_ns: int, symbols: Sequence[str],
        traded: Mapping[str, str], vel_div: np.ndarray, acfg: AlphaConfig, *, btc_symbol: str,
        edge_scale_bps: float, calibration_bars: int = 0,
    ) -> "OracleBarSignals":  # fmt: skip
        """``symbols`` name the panel's rows (the scan universe); ``traded`` maps the traded
        instrument ids to their symbols. In the static volatility-gate mode the threshold is
        calibrated on the first ``calibration_bars`` bars, which then propose nothing (no
        look-ahead)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.diff(np.log(close), axis=1)
        r = np.where(mask[:, 1:] & mask[:, :-1], r, np.nan)
        rets = np.concatenate([np.full((close.shape[0], 1), np.nan), r], axis=1).T  # (T, N)
        b = list(symbols).index(btc_symbol)
        sc = acfg.signal
        static = None
        if sc.vol_gate_mode == "static":
            static = vol_threshold_static(rets[:calibration_bars, b], window_bars=sc.vol_window_bars,
                                          percentile=sc.vol_percentile)  # fmt: skip
        d, s, _resp, reason = entry_signals(vel_div, rets[:, b], rets, sc, static_vol_threshold=static)
        if static is not None:
            d[:calibration_bars] = 0
            s[:calibration_bars] = 0.0
            reason[:calibration_bars] = SignalReason.NO_SIGNAL
        cols = {iid: list(symbols).index(sym) for iid, sym in traded.items()}
        return cls(cols, int(ts_ns[0]), bar_ns, d, s, reason, edge_scale_bps)

    def reason_counts(self) -> dict[str, int]:
        vals, counts = np.unique(self.reason, return_counts=True)
        return {SignalReason(int(v)).name: int(c) for v, c in zip(vals, counts)}

    def on_bar(self, instrument_id: str, ts_ns: int, open_: float, high: float, low: float, close: float,
               volume: float) -> Sequence[Candidate]:  # fmt: skip
        return self.candidates_at(instrument_id, ts_ns)

    def candidate_slots(self, instrument_id: str) -> tuple[int, int, frozenset[int]]:
        """``(offset_ns, step_ns, slots)``: ``candidates_at(instrument_id, ts)`` is empty unless
        ``(ts - offset_ns) // step_ns`` is in ``slots`` (the panel rows with a direction)."""
        off = self.ts0 + self.bar_ns
        n = self.col.get(instrument_id)
        if n is None:
            return off, self.bar_ns, frozenset()
        return off, self.bar_ns, frozenset(np.flatnonzero(self.direction[:, n]).tolist())

    def candidates_at(self, instrument_id: str, ts_ns: int) -> Sequence[Candidate]:
        """The candidates of the bar of ``instrument_id`` closing at ``ts_ns`` (the panel is
        computed before the run: the bar's prices are not needed)."""
        cols = self._cols.get(instrument_id)
        if cols is None:
            n = self.col.get(instrument_id)
            if n is None:
                return ()
            # The traded column as Python lists, built once: no numpy scalar per bar (the same
            # values as int()/float() of the array elements).
            cols = self._cols[instrument_id] = (self.direction[:, n].tolist(), self.strength[:, n].tolist())
        t = (ts_ns - self.bar_ns - self.ts0) // self.bar_ns
        d_col = cols[0]
        if t < 0 or t >= len(d_col):
            return ()
        d = int(d_col[t])
        if d == 0:
            return ()
        st = float(cols[1][t])
        self.emitted += 1
        return (Candidate(instrument_id, d, ts_ns, self.edge_scale_bps * st, st, "vel_div"),)


class NoSignals:
    """SignalSource that proposes nothing (used, and reported, when the scanner is absent)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def on_bar(self, *args) -> Sequence[Candidate]:
        return ()


# --------------------------------------------------------------------------- data


@contextmanager
def catalog_lock(cfg: DolphinConfig) -> Iterator[None]:
    """An exclusive lock around ingest + export + read (parallel test workers and commands
    share the repository's catalog; an export replaces folders another reader may be reading)."""
    import fcntl

    path = _resolve(cfg.execution.backtest.nautilus_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_catalog(cfg: DolphinConfig):
    """The configured catalog with the shipped sample ingested (idempotent). Returns
    (catalog, rows written now, NautilusTrader catalog folder)."""
    from dolphin.data.catalog import Catalog
    from dolphin.data.sample import ensure_sample

    catalog = Catalog(catalog_path(cfg), row_group_size=cfg.data.row_group_size)
    nautilus_dir = _resolve(cfg.execution.backtest.nautilus_dir)
    marker = nautilus_dir / ".sample_ingested"
    written = 0
    if not marker.is_file() or not catalog.datasets():
        reports = ensure_sample(catalog, _resolve(cfg.data.quarantine_dir))
        failed = [r.error for r in reports if r.error]
        if failed:
            raise RuntimeError(f"ingest of the shipped sample failed: {failed[:3]}")
        # (exports of streams this ingest changed are redone by feeds.ensure_exported: fingerprints)
        written = sum(r.rows_written for r in reports)
        nautilus_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("sample ingested\n")
    return catalog, written, nautilus_dir


def catalog_path(cfg: DolphinConfig) -> Path:
    """The catalog folder of this config (`data.catalog_dir`, relative to the repo)."""
    return _resolve(cfg.data.catalog_dir)


def reports_path(cfg: DolphinConfig) -> Path:
    """The reports folder of this config (`execution.backtest.reports_dir`, relative to the repo,
    like every other configured path: the live gate finds the HELL report wherever it is run from)."""
    return _resolve(cfg.execution.backtest.reports_dir)


def kill_flag_path(cfg: DolphinConfig) -> Path:
    """The kill flag file of this config (`execution.kill_flag_path`, relative to the repo)."""
    return _resolve(cfg.execution.kill_flag_path)


class KillFlagNotArmed(ConfigError):
    """Paper or live found no kill flag file: a missing flag counts as raised, and only an
    explicit act arms it (nothing creates it cleared behind an operator who deleted it)."""


def kill_flag_for(cfg: DolphinConfig, *, live: bool) -> KillFlag:
    """The global kill flag: the shared file in paper/live (which refuse to start while it is
    missing: :class:`KillFlagNotArmed`); in a backtest too when it exists. Never written here."""
    path = kill_flag_path(cfg)
    if live and not path.exists():
        raise KillFlagNotArmed(
            f"the kill flag {path} does not exist, and a missing flag counts as raised: arm it with "
            f"`dolphin kill clear` (execution.kill_flag_path)"
        )
    if live or path.is_file():
        return FileKillFlag(path)
    return MemoryKillFlag()


# --------------------------------------------------------------------------- ports


@dataclass
class BarWiring:
    ports: AgentPorts
    risk: SurvivalRiskView
    nev: AlphaNevModel
    signal_status: str


def build_bar_ports(
    cfg: DolphinConfig, close: np.ndarray, mask: np.ndarray, ts_ns: np.ndarray, bar_ns: int,
    symbols: Sequence[str], traded: Mapping[str, str], *, leverage_override: float | None = None,
    kill: KillFlag | None = None, vel_div: np.ndarray | None = None,
) -> BarWiring:  # fmt: skip
    """Real ports for a bar backtest over an aligned panel (N x T) of the scan universe ``symbols``;
    ``traded`` maps the traded instrument ids to their symbols."""
    bt = cfg.execution.backtest
    risk = SurvivalRiskView(backtest_survival_config(cfg, book=False, leverage_override=leverage_override))
    nev = AlphaNevModel(cfg.alpha.nev)
    try:
        vd = vel_div if vel_div is not None else scan_vel_div(close, mask, ts_ns, cfg)
        signals = OracleBarSignals.from_panel(
            close, mask, ts_ns, bar_ns, symbols, traded, vd, cfg.alpha,
            btc_symbol=bt.btc_symbol, edge_scale_bps=bt.signal_edge_bps, calibration_bars=bt.vol_calibration_bars,
        )  # fmt: skip
        status = "oracle"
    except ScanUnavailable as exc:
        signals, status = NoSignals(str(exc)), f"none: {exc}"
    ports = AgentPorts(risk=risk, signals=signals, nev=nev, kill=kill or kill_flag_for(cfg, live=False), sensors=risk)
    return BarWiring(ports, risk, nev, status)


def build_live_ports(cfg: DolphinConfig, signals=None) -> BarWiring:
    """Ports of a live / paper agent: every configured survival layer (its sensors are fed by
    the grid, ledger, scanner and factor planes; an unfed invariant fails safe), Oracle NEV and
    the shared file kill flag. The live signal feed (scanner records -> Oracle) is not built yet:
    without one the agent proposes nothing."""
    risk = SurvivalRiskView(cfg.survival)
    nev = AlphaNevModel(cfg.alpha.nev)
    sig = signals if signals is not None else NoSignals("live scanner feed not wired")
    ports = AgentPorts(risk=risk, signals=sig, nev=nev, kill=kill_flag_for(cfg, live=True), sensors=risk)
    return BarWiring(ports, risk, nev, "given" if signals is not None else "none: live scanner feed not wired")


def ports_summary(ports: AgentPorts) -> dict:
    """Deterministic report section: survival posture path, readings, NEV and signal reasons."""
    out: dict = {}
    risk = ports.risk
    if isinstance(risk, SurvivalRiskView) and risk.controller is not None:
        ctl = risk.controller
        moves = ctl.log.of_kind("posture")
        out["survival"] = {
            "layers": [layer.name for layer in ctl.layers],
            "final_posture": ctl.posture_name,
            "final_r_total": ctl.r_total,
            "posture_changes": len(moves),
            "postures_entered": dict(sorted({m.new: sum(1 for x in moves if x.new == m.new) for m in moves}.items())),
            "readings": dict(sorted(risk.readings.items())),
            "sizer_denials": risk.sizer.denials if risk.sizer is not None else 0,
            "killed": ctl.killed,
        }
        if risk.depth_source is not None:  # L5's depth over its recent normal (DepthRatio)
            d = risk.depth
            out["survival"]["book_depth"] = {
                "readings": d.readings, "skipped": d.skipped, "warmup": d.warmup,
                "reference_quote": d.reference, "last_ratio": d.last_ratio,
            }  # fmt: skip
    if isinstance(ports.nev, AlphaNevModel):
        out["nev_reasons"] = dict(sorted(ports.nev.reasons.items()))
    if isinstance(ports.signals, OracleBarSignals):
        out["signal_reasons"] = ports.signals.reason_counts()
        out["signal_candidates_emitted"] = ports.signals.emitted
    if isinstance(ports.signals, OracleBookSignals):
        out["signals"] = ports.signals.label()
        out["oracle_book"] = ports.signals.summary()
        out["signal_candidates_emitted"] = ports.signals.emitted
    if isinstance(ports.micro, OracleMicrostructure):
        out["placement_confidence"] = "oracle book: book_alignment(side, WOBI) x depth quality (" + (
            "+".join(sorted(set(ports.micro.feed.sources))) or "none") + ")"
    return out


def tick_order_notional_quote(cfg: DolphinConfig) -> float:
    """The largest entry the sizer can give at the backtest's starting capital (R_total 1, APEX):
    the size the Oracle's taker legs walk the book for."""
    sc = cfg.survival
    n = cfg.execution.backtest.starting_usdt * sc.sizer.base_fraction * sc.posture.apex_leverage
    return min(n, sc.sizer.venue_max_notional)


def build_tick_ports(
    cfg: DolphinConfig, signals=None, *, kill: KillFlag | None = None, book: bool = True
) -> BarWiring:  # fmt: skip
    """Real ports of an L1 / L2 run: survival risk view, Oracle NEV, kill flag and the Oracle's
    book (:mod:`dolphin.execution.oracle_book`), fed from the agent's own market data, as the
    placement confidence (``micro``) and, unless ``signals`` is given, as the signal source
    (order-book candidates with NEV after fees). ``book``: a book stream exists (L5 layer on)."""
    risk = SurvivalRiskView(backtest_survival_config(cfg, book=book))
    nev = AlphaNevModel(cfg.alpha.nev)
    feed = OracleBookFeed(cfg.alpha)
    micro = OracleMicrostructure(feed)
    status = "given"
    if signals is None:
        # The book leans the trade's way past the same threshold the agent's trade-permanence
        # rule calls a favourable book.
        signals = OracleBookSignals(feed, cfg.alpha, min_abs_wobi=cfg.execution.exits.wobi_threshold,
                                    order_notional_quote=tick_order_notional_quote(cfg))  # fmt: skip
        status = "oracle_book"
    if book:  # L5's depth reading from the same book (once the agent bound the feed)
        risk.depth_source = micro.depth_quote
    ports = AgentPorts(risk=risk, signals=signals, nev=nev, kill=kill or kill_flag_for(cfg, live=False), micro=micro,
                       sensors=risk)  # fmt: skip
    return BarWiring(ports, risk, nev, status)
