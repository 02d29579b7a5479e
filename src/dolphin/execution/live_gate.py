"""Test control before live: no HELL report for this configuration, or a ruinous one, no live.

A configuration is identified by its hash (``dolphin.research.backtest.config_hash``). The
HELL run writes ``<reports_dir>/hell/<hash>.json``; live trading reads it before starting.
A refusal is data (a :class:`GateResult` naming the report and the command that makes it).
The report passes only as a JSON object of this hash with exactly one HELL run that has
``"ruin": false``, a finite final equity > 0, a finite max drawdown, signals (not "none: ...")
and at least one trade and a max drawdown under ``ruin_drawdown_frac``, made on the catalog data as
it is now (``data_fingerprint``: a report on data since re-ingested or extended is no evidence for
it; a catalog without bar data is refused) by the code as it is now (``code_fingerprint``: a report
of code since changed is no evidence for it) (decision
docs/decisions/0001-research-hell-gate-and-metrics.md).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dolphin.core.config import DolphinConfig
from dolphin.data.errors import DataError

__all__ = ["NO_DATA", "GateResult", "check_live_allowed", "code_fingerprint", "hell_data_fingerprint", "hell_report_path"]

NO_DATA = "no-bar-data"  # hell_data_fingerprint of a catalog without bar data at the venue


@dataclass(frozen=True)
class GateResult:
    allowed: bool
    config_hash: str
    report_path: Path
    reason: str


def hell_report_path(cfg: DolphinConfig, reports_dir: Path | None = None) -> tuple[str, Path]:
    from dolphin.research.backtest import config_hash

    from dolphin.runtime.wiring import reports_path

    h = config_hash(cfg)
    base = Path(reports_dir) if reports_dir is not None else reports_path(cfg)
    return h, base / "hell" / f"{h}.json"


def code_fingerprint() -> str:
    """SHA-256 (16 hex digits) over the dolphin package's Python sources (relative path and bytes,
    in path order): a HELL report certifies the code that made it, and code changed since (a fix,
    a new rule) is no evidence for live until HELL is run again."""
    import hashlib

    import dolphin

    root = Path(dolphin.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def hell_data_fingerprint(cfg: DolphinConfig) -> str:
    """SHA-256 (16 hex digits) over every catalog stream a bar HELL run may read: each bar dataset
    at ``execution.backtest.venue`` whose bar size divides the run's (``data.align.bar_sources``:
    the scanner's panel takes a symbol from the coarsest one that holds it, so a finer dataset
    feeds the signals too), every symbol of it, each stream by name and bytes
    (``feeds.stream_fingerprint``), and with funding on (``execution.backtest.funding``) the traded
    symbols' funding streams, which the run settles on its positions. Conservative: a change to any
    such stream changes it. :data:`NO_DATA` when the venue has no bar data (no run could trade on
    it). Reads only: nothing is ingested or exported."""
    import hashlib

    from dolphin.data.align import bar_sources
    from dolphin.data.catalog import Catalog
    from dolphin.data.errors import CatalogError
    from dolphin.data.schema import bar_interval_ns
    from dolphin.execution.feeds import stream_fingerprint
    from dolphin.runtime.wiring import catalog_path

    bt = cfg.execution.backtest
    catalog = Catalog(catalog_path(cfg))
    h = hashlib.sha256(f"{bt.bars}\0{bt.venue}\0".encode())
    try:
        sources = [ds for _, ds in bar_sources(catalog, bt.venue, bar_interval_ns(bt.bars))]
    except CatalogError:
        sources = []
    if not sources:
        return NO_DATA
    for ds in sources:
        for sym in sorted(catalog.symbols(ds, bt.venue)):
            h.update(f"{ds}\0{sym}\0{stream_fingerprint(catalog, ds, bt.venue, sym)}\0".encode())
    if bt.funding:  # (review 2026-12-06: funding rows changed the HELL equity under the same fingerprint)
        for sym in sorted(bt.symbols):
            h.update(f"funding\0{sym}\0{stream_fingerprint(catalog, 'funding', bt.venue, sym)}\0".encode())
    return h.hexdigest()[:16]


# What a HELL run must at least impose to count as evidence (the definition: 48 % entry and
# 35 % exit fills; ruin at the shipped 50 % drawdown). A configuration may be harsher, never milder:
# with the fractions at 1.0 the "HELL" run was the nominal one and still opened the gate (review,
# 2026-12-06).
HELL_ENTRY_FILL_MAX = 0.48
HELL_EXIT_FILL_MAX = 0.35
RUIN_DRAWDOWN_MAX = 0.5


def _hell_settings_problems(cfg: DolphinConfig) -> list[str]:
    bt = cfg.execution.backtest
    problems = []
    for key, value, limit in (("hell_entry_fill_frac", bt.hell_entry_fill_frac, HELL_ENTRY_FILL_MAX),
                              ("hell_exit_fill_frac", bt.hell_exit_fill_frac, HELL_EXIT_FILL_MAX),
                              ("ruin_drawdown_frac", bt.ruin_drawdown_frac, RUIN_DRAWDOWN_MAX)):
        if not value <= limit:
            problems.append(f"execution.backtest.{key} = {value:g} is milder than HELL's {limit:g}")
    return problems


def _finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _hell_problems(hell: dict[str, Any], ruin_frac: float) -> list[str]:
    """What disqualifies a HELL run as evidence for live (empty: it passes).

    Only an explicit ``"ruin": false`` passes (a missing, null or 0 value does not); the final
    equity must be a finite number > 0 and the drawdown a finite number (a non-finite value is
    written as null with a ``nonfinite`` flag); the run must have had signals and made trades.
    """
    problems = []
    if hell.get("ruin") is not False:
        problems.append(f"ruin is {hell.get('ruin', 'missing')!r} (only false passes)")
    nonfinite = hell.get("nonfinite") if isinstance(hell.get("nonfinite"), dict) else {}
    fe = hell.get("final_equity")
    if not _finite_number(fe) or fe <= 0:
        problems.append(f"final equity {nonfinite.get('final_equity', fe)!r} is not a finite number > 0")
    dd = hell.get("max_drawdown")
    if not _finite_number(dd):
        problems.append(f"max drawdown {nonfinite.get('max_drawdown', dd)!r} is not a finite number")
    elif not dd < ruin_frac:  # the report's own ruin flag is not taken on trust (review 2026-12-06)
        problems.append(f"max drawdown {dd:g} reaches the ruin threshold {ruin_frac:g}")
    signals = hell.get("signals")
    if not isinstance(signals, str) or signals.startswith("none"):
        problems.append(f"signals {signals!r} (the run had no entry signals)")
    trades = hell.get("trades")
    if not (isinstance(trades, int) and not isinstance(trades, bool) and trades > 0):
        problems.append(f"trades {trades!r} (a HELL run must trade to show anything)")
    return problems


def check_live_allowed(
    cfg: DolphinConfig, reports_dir: Path | None = None, config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> GateResult:
    """Whether live may start on ``cfg`` (see the module docstring); ``environ`` (default
    ``os.environ``) only names the ``DOLPHIN__*`` overrides in the command a refusal gives."""
    h, path = hell_report_path(cfg, reports_dir)
    bt = cfg.execution.backtest
    cmd = "dolphin " + (f"-c {config_path} " if config_path else "") + "backtest --scenario hell"
    env = sorted(k for k in (environ if environ is not None else os.environ) if k.startswith("DOLPHIN__"))
    if env:  # the hash includes them: the report must be made with the same overrides set
        cmd += f" (with the same environment overrides set: {', '.join(env)})"
    settings = _hell_settings_problems(cfg)
    if settings:
        return GateResult(False, h, path, f"configuration {h} does not run a HELL test: {'; '.join(settings)}; "
                                          f"set them no higher and run `{cmd}`")
    if not path.is_file():
        return GateResult(False, h, path, f"no HELL report for configuration {h}: missing {path}; run `{cmd}`")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return GateResult(False, h, path, f"HELL report {path} unreadable ({exc}); run `{cmd}` again")
    runs = doc.get("runs", [doc]) if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return GateResult(False, h, path, f"HELL report {path} is not a report document (a JSON object with runs); run `{cmd}` again")
    hells = [r for r in runs if r.get("scenario") == "hell"]
    if len(hells) != 1 or doc.get("config_hash") != h:
        return GateResult(False, h, path, f"HELL report {path} is not one HELL run of configuration {h}; run `{cmd}`")
    hell = hells[0]
    if hell.get("ruin") is True:
        return GateResult(
            False, h, path,
            f"HELL report {path} shows ruin (final equity "
            f"{hell.get('final_equity')}, max drawdown {hell.get('max_drawdown')}); "
            f"change the configuration and run `{cmd}`",
        )
    problems = _hell_problems(hell, bt.ruin_drawdown_frac)
    draws = hell.get("hell_fill_draws")
    if isinstance(draws, dict) and (draws.get("entry_frac"), draws.get("exit_frac")) != (
        bt.hell_entry_fill_frac, bt.hell_exit_fill_frac,
    ):
        problems.append(f"its fill fractions {draws.get('entry_frac')!r} / {draws.get('exit_frac')!r} are not this "
                        f"configuration's")
    if problems:
        return GateResult(
            False, h, path,
            f"HELL report {path} does not pass: {'; '.join(problems)}; fix the cause (configuration, "
            f"scanner) and run `{cmd}`",
        )
    try:
        now = hell_data_fingerprint(cfg)
    except (OSError, DataError) as exc:  # an unreadable catalog file: refused, named (not a traceback)
        return GateResult(False, h, path, f"the catalog cannot be read to check the HELL report's data ({exc})")
    if now == NO_DATA:
        return GateResult(False, h, path, f"the catalog has no {bt.bars} data at {bt.venue}: no HELL report can vouch "
                                          f"for it; ingest the data and run `{cmd}`")
    made_on = doc.get("data_fingerprint")
    if made_on != now:
        why = ("records no data fingerprint" if made_on is None else
               f"was made on other data (fingerprint {made_on!r}; the catalog's {bt.bars} now {now!r}: "
               f"ingested, extended or replaced since)")
        return GateResult(False, h, path, f"HELL report {path} {why}; run `{cmd}` on the data as it is now")
    made_by, code = doc.get("code_fingerprint"), code_fingerprint()
    if made_by != code:
        why = ("records no code fingerprint" if made_by is None else
               f"was made by other code (fingerprint {made_by!r}, this code {code!r})")
        return GateResult(False, h, path, f"HELL report {path} {why}; run `{cmd}` with this code")
    return GateResult(True, h, path, f"HELL report {path} passed (no ruin)")
