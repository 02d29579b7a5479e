"""Backtest reports: terminal table (rich), JSON, and HTML + PNG with the equity curve."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["NONFINITE_KEY", "REPORT_ROWS", "json_safe", "render_table", "report_json", "write_report"]

# Strict JSON has no Infinity / NaN: a non-finite float is written as null, and the dict that holds
# it gets {"nonfinite": {key: "inf" | "-inf" | "nan"}} naming what the null stands for.
NONFINITE_KEY = "nonfinite"

# (key, label, format)
REPORT_ROWS: list[tuple[str, str, str]] = [
    ("roi", "ROI", "{:+.3%}"),
    ("max_drawdown", "max drawdown", "{:.3%}"),
    ("profit_factor", "profit factor", "{:.3f}"),
    ("sharpe", "Sharpe (annualised)", "{:.3f}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("trades", "trades (closed)", "{:d}"),
    ("open_positions_end", "open positions at end", "{:d}"),
    ("unrealised_pnl_end_usdt", "  their unrealised PnL (USDT)", "{:+,.2f}"),
    ("ggr_annual", "geometric growth rate / yr", "{:+.4f}"),
    ("fill_rate", "fill rate (orders)", "{:.1%}"),
    ("fill_rate_entry", "  entry fill rate", "{:.1%}"),
    ("fill_rate_exit", "  exit fill rate", "{:.1%}"),
    ("cancel_rate", "cancel rate", "{:.1%}"),
    ("otr", "OTR (messages / fills)", "{:.2f}"),
    ("otr_max_window", "OTR max in window", "{:.2f}"),
    ("otr_denials", "OTR governor denials", "{:d}"),
    ("realised_nev_bps", "realised NEV (bps/trade)", "{:+.2f}"),
    ("expected_nev_bps", "expected NEV (bps/trade)", "{:+.2f}"),
    ("fees_usdt", "fees paid (USDT)", "{:,.2f}"),
    ("taxes_usdt", "taxes paid (USDT)", "{:,.2f}"),
    ("funding_usdt", "funding received (USDT)", "{:+,.2f}"),
    ("funding_missing", "  funding times without a rate", "{:d}"),
    ("post_only_taker_fills", "post-only taker fills", "{:d}"),
    ("ruin", "ruin", "{}"),
]


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "-"  # not in this report (e.g. funding off)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _nonfinite_name(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def json_safe(obj: Any) -> Any:
    """A copy of `obj` that strict JSON parsers accept: each non-finite float in a dict becomes
    null and is named in that dict's ``nonfinite`` map (in a list it becomes the string
    "inf" / "-inf" / "nan"). Finite documents come back unchanged."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else _nonfinite_name(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        flags: dict[str, str] = {}
        for k, v in obj.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
                flags[str(k)] = _nonfinite_name(v)
            else:
                out[k] = json_safe(v)
        if flags:
            out[NONFINITE_KEY] = dict(sorted({**out.get(NONFINITE_KEY, {}), **flags}.items()))
        return out
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def report_json(report: dict[str, Any]) -> str:
    """Canonical strict JSON (sorted keys, no Infinity/NaN tokens): identical bytes for identical runs."""
    return json.dumps(json_safe(report), sort_keys=True, indent=1, allow_nan=False)


def render_table(reports: Sequence[dict[str, Any]], title: str = "dolphin backtest") -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for r in reports:
        table.add_column(str(r.get("scenario", "?")), justify="right")
    for key, label, fmt in REPORT_ROWS:
        table.add_row(label, *[_fmt(fmt, r.get(key)) for r in reports])
    import io

    console = Console(record=True, width=100, file=io.StringIO())
    console.print(table)
    return console.export_text()


def write_report(
    out_dir: Path,
    name: str,
    reports: Sequence[dict[str, Any]],
    equities: Sequence[Sequence[tuple[int, float]]],
) -> dict[str, Path]:
    """Write <name>.json, <name>.png (equity curves) and <name>.html (table + plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "png": out_dir / f"{name}.png", "html": out_dir / f"{name}.html"}
    doc = reports[0] if len(reports) == 1 else {"runs": list(reports)}
    paths["json"].write_text(report_json(doc) + "\n")
    fig, ax = plt.subplots(figsize=(9, 4))
    for r, eq in zip(reports, equities):
        if eq:
            t0 = eq[0][0]
            ax.plot([(t - t0) / 86_400e9 for t, _ in eq], [v for _, v in eq], label=str(r.get("scenario")))
    ax.set_xlabel("days")
    ax.set_ylabel("equity (USDT)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90, metadata={"Software": None})
    plt.close(fig)
    rows = "".join(
        "<tr><td>" + html.escape(label) + "</td>"
        + "".join(f"<td>{html.escape(_fmt(fmt, r.get(key)))}</td>" for r in reports) + "</tr>"
        for key, label, fmt in REPORT_ROWS
    )
    head = "".join(f"<th>{html.escape(str(r.get('scenario')))}</th>" for r in reports)
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(name)}</title></head><body>"
        f"<h1>{html.escape(name)}</h1><table border='1' cellpadding='4'><tr><th>metric</th>{head}</tr>{rows}</table>"
        f"<p><img src='{paths['png'].name}' alt='equity curve'></p></body></html>\n"
    )
    return paths
