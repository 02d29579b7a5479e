"""NautilusTrader backtests of the dolphin agent: nominal, HELL, and the leverage knee.

One BacktestEngine per run on real data read from the catalog (bars; L1 quotes and trades and
L2 depth of the ingested capture), with maker/taker fees and the tax on its taxed side
(execution.fees), perpetual funding (research.funding), a FillModel with a
fixed seed, a LatencyModel and queue position on. Returns a :class:`BacktestResult` whose
`report` dict holds only deterministic numbers (no wall-clock time), so two runs with the same
seed give byte-identical JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

import msgspec
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.models import FeeModel, FillModel, LatencyModel
from nautilus_trader.config import BacktestEngineConfig, LoggingConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import AccountType, BookType, OmsType
from nautilus_trader.model.objects import Money

from dolphin.core.config import ConfigError, DolphinConfig
from dolphin.execution.agent import AgentPorts, DolphinAgent, DolphinAgentConfig
from dolphin.execution.config import BacktestConfig, ExecutionConfig
from dolphin.execution.fees import taxes_charged, venue_fee_model
from dolphin.execution.feeds import BarSet, TickSet, catalog_bar_set, catalog_ticks
from dolphin.execution.instruments import BINANCE
from dolphin.research.arrivals import CommandArrivals
from dolphin.research.funding import FundingModule, FundingSeries, funding_events, load_funding
from dolphin.research.hell import HellFillModel
from dolphin.research.trade_records import buffer_trade_records

__all__ = [
    "BacktestResult", "BarData", "bar_interval_ns_checked", "bar_order_ttl_ms", "build_engine", "config_hash", "funding_module",
    "load_bars",
    "run_bar_backtest",
]

NS_PER_MS = 1_000_000
NS_PER_HOUR = 3_600_000_000_000
NS_PER_YEAR = 365.25 * 86_400 * 1e9


@dataclass
class BacktestResult:
    report: dict[str, Any]
    equity: list[tuple[int, float]] = field(default_factory=list)
    agent: DolphinAgent | None = None
    engine: BacktestEngine | None = None
    fill_model: FillModel | None = None
    funding: FundingModule | None = None  # the run's funding settlement (None: funding off)


def config_hash(cfg: DolphinConfig) -> str:
    """Identity of a configuration: sha256 of its canonical JSON (the `mode` key excluded)."""
    import hashlib

    raw = msgspec.to_builtins(msgspec.structs.replace(cfg, mode="backtest"))
    return hashlib.sha256(msgspec.json.encode(raw, order="sorted")).hexdigest()[:16]


@dataclass
class BarData:
    """The bars of a backtest: NautilusTrader bar sets and the same bars as an aligned panel."""

    sets: list[BarSet]
    close: Any  # (N, T) float64, NaN where missing
    mask: Any  # (N, T) bool, real bars
    ts_ns: Any  # (T,) open times
    bar_ns: int
    symbols: tuple[str, ...]
    vel_div: Any = None  # the scanner's vel_div per bar, computed once per data set
    signal_status: str = ""
    # the traded symbols' funding rows around the bars (None: funding off, or not loaded)
    funding: dict[str, FundingSeries] | None = None


def bar_interval_ns_checked(bt: BacktestConfig) -> int:
    """The bar spacing of the configured data set (`bars`), checked against `bar_minutes`.

    `bar_minutes` drives the Sharpe annualisation, the bar-order TTL and the Oracle's panel
    lookup; a `bars = "bars_1m"` run left at the default `bar_minutes = 5` would silently use
    5-minute periods on 1-minute data, so a disagreement is a configuration error.
    """
    from dolphin.data.schema import bar_interval_ns

    try:
        data_ns = bar_interval_ns(bt.bars)
    except ValueError as exc:
        raise ConfigError(f"config key 'execution.backtest.bars' = {bt.bars!r} is not allowed: {exc}") from None
    want_ns = bt.bar_minutes * 60_000 * NS_PER_MS
    if data_ns != want_ns:
        raise ConfigError(
            f"config key 'execution.backtest.bar_minutes' = {bt.bar_minutes} is not allowed: the data set "
            f"execution.backtest.bars = {bt.bars!r} has {data_ns / 60e9:g}-minute bars; set bar_minutes = "
            f"{data_ns / 60e9:g} (or choose a bars data set of {bt.bar_minutes}-minute bars)"
        )
    return data_ns


def bar_order_ttl_ms(bt: BacktestConfig, interval_ns: int | None = None) -> int:
    """The agent's order TTL on bar data (ms). Bars have no intra-bar quotes: an order lives
    ``bar_order_ttl_bars`` bars (plus the round-trip latency) instead of the live 200 ms, or no
    maker order could ever fill: accepted one latency after its bar (research.arrivals), its
    cancel arrives one latency after the last bar it sees."""
    if interval_ns is None:
        interval_ns = bar_interval_ns_checked(bt)
    return (bt.bar_order_ttl_bars * interval_ns + 2 * int(bt.latency_ms * NS_PER_MS)) // NS_PER_MS + 1


def load_bars(cfg: DolphinConfig, *, max_bars: int | None = None) -> BarData:
    """The configured symbols' bars from the catalog (the shipped sample is ingested if missing)."""
    from dolphin.runtime.wiring import catalog_lock

    bar_interval_ns_checked(cfg.execution.backtest)  # before any catalog work
    with catalog_lock(cfg):
        return _load_bars(cfg, max_bars)


def _load_bars(cfg: DolphinConfig, max_bars: int | None) -> BarData:
    from dolphin.data.align import align_bars
    from dolphin.runtime.wiring import ensure_catalog

    bt = cfg.execution.backtest
    bar_ns = bar_interval_ns_checked(bt)
    catalog, _written, nautilus_dir = ensure_catalog(cfg)
    sets = [
        catalog_bar_set(catalog, nautilus_dir, bt.bars, bt.venue, sym, maker_fee_bps=bt.maker_fee_bps,
                        taker_fee_bps=bt.taker_fee_bps, max_bars=max_bars)  # fmt: skip
        for sym in bt.symbols
    ]
    start = min(s.bars[0].ts_event for s in sets) - bar_ns
    end = max(s.bars[-1].ts_event for s in sets)
    # The scan universe: every symbol of the bar data set (the scanner's eigenvalues need the
    # cross-section), on the traded range.
    universe = tuple(bt.scan_universe) or None
    aligned = align_bars(catalog, bt.venue, universe, start, end, bar=bt.bars.removeprefix("bars_"))
    missing = [s for s in (*bt.symbols, bt.btc_symbol) if s not in aligned.symbols]
    if missing:
        raise ConfigError(
            f"config keys 'execution.backtest.symbols' / 'btc_symbol': {missing} are not in the scan universe "
            f"{list(aligned.symbols)} of {bt.bars!r}"
        )
    funding = (
        load_funding(catalog, bt.venue, bt.symbols, start, end, _funding_interval_ns(bt))
        if bt.funding else None
    )  # fmt: skip
    return BarData(sets, aligned.close, aligned.mask, aligned.ts_ns, bar_ns, tuple(aligned.symbols), funding=funding)


def funding_module(
    bt: BacktestConfig, series: dict[str, FundingSeries] | None, instruments: Sequence[Any], start_ns: int,
    end_ns: int,
) -> FundingModule | None:
    """The venue's funding settlement for a run over ``[start_ns, end_ns]`` (None when
    `execution.backtest.funding` is off). ``series``: the symbols' funding rows (load_funding)."""
    if not bt.funding:
        return None
    if series is None:
        raise ValueError("funding is on (execution.backtest.funding) but no funding rows were loaded")
    ids = {str(i.raw_symbol): str(i.id) for i in instruments}
    return FundingModule(funding_events(series, ids, start_ns, end_ns, _funding_interval_ns(bt)))


def _funding_rows(cfg: DolphinConfig, symbols: Sequence[str], start_ns: int, end_ns: int) -> dict[str, FundingSeries] | None:
    """The symbols' funding rows from the catalog (tick and depth runs; bar runs load them with the bars)."""
    from dolphin.runtime.wiring import catalog_lock, ensure_catalog

    bt = cfg.execution.backtest
    if not bt.funding:
        return None
    with catalog_lock(cfg):
        catalog, _written, _nautilus_dir = ensure_catalog(cfg)
        return load_funding(catalog, bt.venue, symbols, start_ns, end_ns, _funding_interval_ns(bt))


def _funding_interval_ns(bt: BacktestConfig) -> int:
    return bt.funding_interval_hours * NS_PER_HOUR


# build_engine bypasses NautilusTrader's logging, so the strategy's per-event / per-command log
# lines (an f-string of every order event) would be formatted for nothing; the agent records
# its own events (AgentRun). Live and paper keep NautilusTrader's defaults.
BACKTEST_AGENT_LOGS: dict[str, bool] = dict(
    log_events=False, log_commands=False, log_rejected_due_post_only_as_warning=False
)


def build_engine(
    bt: BacktestConfig,
    *,
    hell: bool = False,
    fill_model: FillModel | None = None,
    trades: bool = False,
    book_type: BookType = BookType.L1_MBP,
    engine_options: dict[str, Any] | None = None,
    settle_arrivals: bool = True,
    funding: FundingModule | None = None,
    fee_model: FeeModel | None = None,
) -> BacktestEngine:
    """A BINANCE venue with fees, fill model, latency; queue position on when trades drive it.

    NautilusTrader's queue position works from trade ticks; with bars only there are no
    trades and it would block every limit fill, so bar runs keep it off. ``engine_options``
    are extra ``BacktestEngineConfig`` fields (the benchmark's engine switches). The
    portfolio analyzer's per-closed-position record is buffered (``research.trade_records``:
    the same records, built on first read instead of one pandas concat per position).
    Every command reaches the venue at its time + latency (``research.arrivals``: without it
    NautilusTrader processes it only after the next data event has moved the book);
    ``settle_arrivals=False`` keeps NautilusTrader's own timing (tests show the difference).
    ``funding`` settles perpetual funding on the venue's positions (research.funding).
    ``fee_model``: the venue's commission (default ``execution.fees.venue_fee_model`` of ``bt``:
    maker / taker fee, plus the tax on its taxed side).
    """
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id="DOLPHIN-001", logging=LoggingConfig(bypass_logging=True), run_analysis=False,
            **(engine_options or {}),
        )
    )
    buffer_trade_records(engine.portfolio.analyzer)
    if fill_model is None:
        fill_model = make_fill_model(bt, hell=hell)
    latency = LatencyModel(base_latency_nanos=int(bt.latency_ms * NS_PER_MS))
    engine.add_venue(
        venue=BINANCE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USDT,
        starting_balances=[Money(bt.starting_usdt, USDT)],
        default_leverage=Decimal(20),
        fill_model=fill_model,
        fee_model=fee_model if fee_model is not None else venue_fee_model(bt.tax_bps, bt.tax_side),
        latency_model=latency,
        queue_position=trades,
        book_type=book_type,
        trade_execution=True,
        modules=[funding] if funding is not None else None,
    )
    if settle_arrivals and latency.insert_latency_nanos + latency.cancel_latency_nanos > 0:
        engine.add_actor(CommandArrivals(latency))
    return engine


def make_fill_model(bt: BacktestConfig, *, hell: bool) -> FillModel:
    if hell:
        return HellFillModel(
            entry_fill_frac=bt.hell_entry_fill_frac,
            exit_fill_frac=bt.hell_exit_fill_frac,
            prob_fill_on_limit=bt.prob_fill_on_limit,
            random_seed=bt.seed,
        )
    return FillModel(prob_fill_on_limit=bt.prob_fill_on_limit, random_seed=bt.seed)


def default_ports(cfg: DolphinConfig, data: BarData, *, leverage_override: float | None = None) -> AgentPorts:
    """The composition root's real ports for a bar run (survival, Oracle NEV and signals, kill flag)."""
    from dolphin.runtime.wiring import build_bar_ports

    from dolphin.runtime.wiring import ScanUnavailable, scan_vel_div

    if data.vel_div is None and not data.signal_status:
        try:
            data.vel_div = scan_vel_div(data.close, data.mask, data.ts_ns, cfg)
        except ScanUnavailable as exc:
            data.signal_status = f"none: {exc}"
    traded = {str(s.instrument.id): str(s.instrument.raw_symbol) for s in data.sets}
    w = build_bar_ports(cfg, data.close, data.mask, data.ts_ns, data.bar_ns, data.symbols, traded,
                        leverage_override=leverage_override, vel_div=data.vel_div)  # fmt: skip
    data.signal_status = w.signal_status
    return w.ports


def run_bar_backtest(
    cfg: DolphinConfig,
    *,
    scenario: str = "nominal",
    data: BarData | None = None,
    ports: AgentPorts | None = None,
    leverage_override: float | None = None,
) -> BacktestResult:
    """One agent run on bars; `scenario` is "nominal" or "hell"."""
    ex: ExecutionConfig = cfg.execution
    bt = ex.backtest
    data = data if data is not None else load_bars(cfg)
    sets = data.sets
    fill_model = make_fill_model(bt, hell=(scenario == "hell"))
    first, last = min(s.bars[0].ts_event for s in sets), max(s.bars[-1].ts_event for s in sets)
    if bt.funding and data.funding is None:
        data.funding = _funding_rows(cfg, [str(s.instrument.raw_symbol) for s in sets], first, last)
    funding = funding_module(bt, data.funding, [s.instrument for s in sets], first, last)
    fee_model = venue_fee_model(bt.tax_bps, bt.tax_side)
    engine = build_engine(bt, fill_model=fill_model, funding=funding, fee_model=fee_model)
    for s in sets:
        engine.add_instrument(s.instrument)
        engine.add_data(s.bars)
    interval_ns = bar_interval_ns_checked(bt)  # == data.bar_ns: load_bars checked bar_minutes
    if data.bar_ns != interval_ns:
        raise ConfigError(
            f"config key 'execution.backtest.bar_minutes' = {bt.bar_minutes} is not allowed: the bars given "
            f"are {data.bar_ns / 60e9:g}-minute bars"
        )
    ttl_ms = bar_order_ttl_ms(bt, interval_ns)
    agent = DolphinAgent(
        DolphinAgentConfig(
            instrument_ids=tuple(str(s.instrument.id) for s in sets),
            bar_types=tuple(str(s.bar_type) for s in sets),
            order_ttl_ms=int(ttl_ms),
            **BACKTEST_AGENT_LOGS,
        ),
        ex,
        ports if ports is not None else default_ports(cfg, data, leverage_override=leverage_override),
    )
    res = _run_agent(engine, agent, bt, scenario, NS_PER_YEAR / interval_ns,
                     signals=data.signal_status or "given", fill_model=fill_model, funding=funding,
                     fee_model=fee_model)  # fmt: skip
    # the data that ran (``dataset`` is the configuration's label; review 2026-12-06: a 1-minute
    # run's report named the 5-minute set)
    res.report["bar_dataset"] = f"{bt.venue}/{bt.bars}"
    return res


def _run_agent(
    engine: BacktestEngine,
    agent: DolphinAgent,
    bt: BacktestConfig,
    scenario: str,
    periods_per_year: float,
    *,
    extra_strategies: Sequence[Any] = (),
    signals: str | None = None,
    fill_model: FillModel | None = None,
    funding: FundingModule | None = None,
    fee_model: FeeModel | None = None,
) -> BacktestResult:
    """Run the engine with the agent (and any extra strategies); the report with the ports' summary."""
    engine.add_strategy(agent)
    for s in extra_strategies:
        engine.add_strategy(s)
    taxes_before = taxes_charged(fee_model)  # (a fee model is not reset with the engine: this run's share)
    engine.run()
    report = build_report(agent, bt, scenario, periods_per_year=periods_per_year,
                          taxes_usdt=taxes_charged(fee_model) - taxes_before)  # fmt: skip
    if signals is not None:
        report["signals"] = signals
    if isinstance(fill_model, HellFillModel):
        # What HELL did: one draw per limit order (market orders are not drawn), so the report's
        # fill rates (which count market exits too) can be checked against the fractions.
        fm = fill_model
        report["hell_fill_draws"] = {
            "entry_frac": fm.entry_fill_frac, "exit_frac": fm.exit_fill_frac,
            "entry_allowed": fm.allowed_entry, "entry_denied": fm.denied_entry,
            "exit_allowed": fm.allowed_exit, "exit_denied": fm.denied_exit,
        }  # fmt: skip
    # funding settled on the positions (in the balance, so in ROI, drawdown and GGR; not in the
    # per-trade PnL, profit factor or win rate, which are NautilusTrader's position PnL)
    report["funding_model"] = "catalog" if funding is not None else "off"
    if funding is not None:
        report.update(funding.summary())
    from dolphin.runtime.wiring import ports_summary

    report.update(ports_summary(agent.ports))
    return BacktestResult(report=report, equity=list(agent.run.equity), agent=agent, engine=engine, fill_model=fill_model,
                          funding=funding)


# --------------------------------------------------------------------------- report


def _max_drawdown(values: Sequence[float]) -> float:
    peak = -math.inf
    worst = 0.0
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, 1.0 - v / peak)
    return worst


def build_report(
    agent: DolphinAgent, bt: BacktestConfig, scenario: str, *, periods_per_year: float, taxes_usdt: float = 0.0
) -> dict[str, Any]:
    """The run's report; ``taxes_usdt``: the tax the venue's fee model charged (execution.fees),
    part of the commissions NautilusTrader's fills carry."""
    run = agent.run
    c = run.counters
    gov = agent.governor.counters
    start = bt.starting_usdt
    eq = [e for _, e in run.equity] or [start]
    final = agent._capital()  # realised balance at the end (open positions valued in the curve)
    # The account is dead from the first equity <= 0 (or a non-finite one): nothing after it is a
    # return of this account, and the run is a ruin whatever the curve does afterwards; its final
    # equity, ROI and drawdown are those at death.
    dead_at = next((i for i, e in enumerate(eq) if not (math.isfinite(e) and e > 0)), None)
    alive = eq if dead_at is None else eq[: dead_at + 1]
    final_eq = alive[-1]
    rets = [alive[i] / alive[i - 1] - 1.0 for i in range(1, len(alive)) if math.isfinite(alive[i])]
    n = len(rets)
    mean = sum(rets) / n if n else 0.0
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (n - 1)) if n > 1 else 0.0
    sharpe = mean / sd * math.sqrt(periods_per_year) if sd > 0 else 0.0
    span_ns = run.equity[-1][0] - run.equity[0][0] if len(run.equity) > 1 else 0
    years = span_ns / NS_PER_YEAR
    # GGR is -inf once the account was ruined anywhere on the path (not only at the end).
    ggr = -math.inf if dead_at is not None else (math.log(final_eq / start) / years if years > 0 else 0.0)
    pnls = [t["pnl"] for t in run.trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    pf = sum(wins) / -sum(losses) if losses else (math.inf if wins else 0.0)
    sub_e = c.get("submitted_entry", 0)
    sub_x = c.get("submitted_exit", 0)
    submits = sub_e + sub_x
    msgs = gov.submits + gov.amends + gov.cancels
    realised = [t["realised_bps"] for t in run.trades]
    expected = [t["expected_nev_bps"] for t in run.trades if not math.isnan(t["expected_nev_bps"])]
    exits: dict[str, int] = {}
    for t in run.trades:
        exits[t["exit_reason"]] = exits.get(t["exit_reason"], 0) + 1
    dd = _max_drawdown(alive)
    # Positions still open at the end are in final equity (marked at their last prices) but not in
    # trades, profit factor or win rate (those count closed positions): reported beside them.
    open_end = sum(1 for s in agent._pos.values() if s.position is not None and s.position.is_open)
    # their PnL at their last prices, with the balance after every fill (one may follow the last point)
    upnl_end = agent._equity_now() - final if open_end else 0.0
    report = {
        "scenario": scenario,
        "seed": bt.seed,
        "symbols": list(bt.symbols),
        "dataset": bt.dataset,
        "bars": len(run.equity),
        "start_equity": start,
        "final_equity": final_eq,
        "final_balance": final,
        "roi": final_eq / start - 1.0,
        "max_drawdown": dd,
        "profit_factor": pf,
        "sharpe": sharpe,
        "win_rate": len(wins) / len(pnls) if pnls else 0.0,
        "trades": len(pnls),
        "open_positions_end": open_end,
        "unrealised_pnl_end_usdt": upnl_end,
        "ggr_annual": ggr,
        "fill_rate_entry": c.get("orders_filled_entry", 0) / sub_e if sub_e else 0.0,
        "fill_rate_exit": c.get("orders_filled_exit", 0) / sub_x if sub_x else 0.0,
        "fill_rate": (c.get("orders_filled_entry", 0) + c.get("orders_filled_exit", 0)) / submits if submits else 0.0,
        "cancel_rate": gov.cancels / gov.submits if gov.submits else 0.0,
        "otr": msgs / max(1, gov.fills),
        "otr_max_window": gov.max_otr_seen,
        "otr_denials": gov.denials,
        "realised_nev_bps": sum(realised) / len(realised) if realised else 0.0,
        "expected_nev_bps": sum(expected) / len(expected) if expected else 0.0,
        "fees_usdt": run.fees_usdt - taxes_usdt,
        "taxes_usdt": taxes_usdt,
        "traded_notional_usdt": run.traded_notional_usdt,
        "post_only_taker_fills": c.get("post_only_taker_fills", 0),
        "exits": dict(sorted(exits.items())),
        "counters": dict(sorted(c.items())),
        "ruin": bool(dead_at is not None or not math.isfinite(dd) or dd >= bt.ruin_drawdown_frac),
    }
    return report


# --------------------------------------------------------------------------- L2 capture runs


def load_l1(cfg: DolphinConfig, symbol: str = "BTCUSDT", *, max_quotes: int | None = None) -> TickSet:
    """bookTicker quotes + trades of the ingested L2 capture, from the catalog."""
    from dolphin.runtime.wiring import catalog_lock, ensure_catalog

    bt = cfg.execution.backtest
    with catalog_lock(cfg):
        catalog, _written, nautilus_dir = ensure_catalog(cfg)
        return catalog_ticks(catalog, nautilus_dir, bt.venue, symbol, maker_fee_bps=bt.maker_fee_bps,
                         taker_fee_bps=bt.taker_fee_bps, max_quotes=max_quotes)  # fmt: skip


def load_depth(cfg: DolphinConfig, symbol: str = "BTCUSDT"):
    """The ingested L2 capture as order-book delta batches + trades, from the catalog."""
    from dolphin.execution.feeds import catalog_depth
    from dolphin.runtime.wiring import catalog_lock, ensure_catalog

    bt = cfg.execution.backtest
    with catalog_lock(cfg):
        catalog, _written, nautilus_dir = ensure_catalog(cfg)
        return catalog_depth(catalog, nautilus_dir, bt.venue, symbol, maker_fee_bps=bt.maker_fee_bps,
                             taker_fee_bps=bt.taker_fee_bps)  # fmt: skip


def run_tick_backtest(
    cfg: DolphinConfig,
    ports: AgentPorts,
    *,
    ticks=None,
    scenario: str = "nominal",
    bar_seconds: int = 1,
    order_ttl_ms: int | None = None,
    extra_strategies: Sequence[Any] = (),
    fill_model: FillModel | None = None,
) -> BacktestResult:
    """The agent on real L1 quotes and trades from the L2 capture (queue position on).

    The agent's bars are NautilusTrader INTERNAL bars aggregated from the quotes (mid), so
    simulated time advances in milliseconds and the 200 ms cancel timer is the live one.
    """
    if bar_seconds < 1:
        raise ValueError(f"bar_seconds must be >= 1, got {bar_seconds}")
    ex: ExecutionConfig = cfg.execution
    bt = ex.backtest
    if ticks is None:
        ticks = load_l1(cfg)
    if fill_model is None:  # built here so the report can show what HELL drew (review 2026-12-06)
        fill_model = make_fill_model(bt, hell=(scenario == "hell"))
    funding = _tick_funding(cfg, ticks.instrument, ticks.quotes, ticks.trades)
    fee_model = venue_fee_model(bt.tax_bps, bt.tax_side)
    engine = build_engine(bt, fill_model=fill_model, trades=bool(ticks.trades), funding=funding, fee_model=fee_model)
    engine.add_instrument(ticks.instrument)
    engine.add_data(ticks.quotes)
    if ticks.trades:
        engine.add_data(ticks.trades)
    iid = str(ticks.instrument.id)
    agent = DolphinAgent(
        DolphinAgentConfig(
            instrument_ids=(iid,),
            bar_types=(f"{iid}-{bar_seconds}-SECOND-MID-INTERNAL",),
            subscribe_quotes=True,
            subscribe_trades=bool(ticks.trades),
            order_ttl_ms=order_ttl_ms if order_ttl_ms is not None else ex.placer.cancel_after_ms,
            **BACKTEST_AGENT_LOGS,
        ),
        ex,
        ports,
    )
    return _run_agent(engine, agent, bt, scenario, NS_PER_YEAR / (bar_seconds * 1e9), extra_strategies=extra_strategies,
                      fill_model=fill_model, funding=funding, fee_model=fee_model)


def run_depth_backtest(
    cfg: DolphinConfig,
    ports: AgentPorts,
    *,
    depth=None,
    scenario: str = "nominal",
    bar_seconds: int = 1,
    order_ttl_ms: int | None = None,
) -> BacktestResult:
    """The agent on the L2 capture replayed as order-book deltas (L2_MBP venue book) plus trades.

    The agent's bars are INTERNAL bars aggregated from trades (last price); its placement reads
    the data engine's L2 book. Queue position is on (driven by the trades).
    """
    if bar_seconds < 1:
        raise ValueError(f"bar_seconds must be >= 1, got {bar_seconds}")
    ex: ExecutionConfig = cfg.execution
    bt = ex.backtest
    if depth is None:
        depth = load_depth(cfg)
    fill_model = make_fill_model(bt, hell=(scenario == "hell"))
    funding = _tick_funding(cfg, depth.instrument, depth.deltas, depth.trades)
    fee_model = venue_fee_model(bt.tax_bps, bt.tax_side)
    engine = build_engine(bt, fill_model=fill_model, trades=True, book_type=BookType.L2_MBP, funding=funding,
                          fee_model=fee_model)
    engine.add_instrument(depth.instrument)
    engine.add_data(depth.deltas)
    engine.add_data(depth.trades)
    iid = str(depth.instrument.id)
    agent = DolphinAgent(
        DolphinAgentConfig(
            instrument_ids=(iid,),
            bar_types=(f"{iid}-{bar_seconds}-SECOND-LAST-INTERNAL",),
            subscribe_trades=True,
            subscribe_book=True,
            order_ttl_ms=order_ttl_ms if order_ttl_ms is not None else ex.placer.cancel_after_ms,
            **BACKTEST_AGENT_LOGS,
        ),
        ex,
        ports,
    )
    return _run_agent(engine, agent, bt, scenario, NS_PER_YEAR / (bar_seconds * 1e9), fill_model=fill_model,
                      funding=funding, fee_model=fee_model)


def _tick_funding(cfg: DolphinConfig, instrument: Any, *streams: Sequence[Any]) -> FundingModule | None:
    """The funding settlement of a tick or depth run over its data's time range."""
    bt = cfg.execution.backtest
    if not bt.funding:
        return None
    stamps = [s[i].ts_event for s in streams if s for i in (0, -1)]
    if not stamps:
        return None
    start, end = min(stamps), max(stamps)
    rows = _funding_rows(cfg, [str(instrument.raw_symbol)], start, end)
    return funding_module(bt, rows, [instrument], start, end)
