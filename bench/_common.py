"""Shared helpers for benchmarks: timing loops and the results file format (shared/BENCHMARKS.md)."""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"

_OPS = {"<=": lambda v, g: v <= g, ">=": lambda v, g: v >= g, "<": lambda v, g: v < g, ">": lambda v, g: v > g}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def time_calls(fn: Callable[[], Any], *, repeat: int, warmup: int = 3) -> np.ndarray:
    """Wall-clock seconds of each of `repeat` calls after `warmup` calls (GC disabled while timing)."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeat, dtype=np.float64)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeat):
            t0 = time.perf_counter_ns()
            fn()
            out[i] = (time.perf_counter_ns() - t0) * 1e-9
    finally:
        if gc_was:
            gc.enable()
    return out


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline_name: str | None = None,
    baseline_value: float | None = None,
    ratio: float | None = None,
    goal: float | None = None,
    goal_op: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One figure; `met` is computed from value/goal/goal_op, never typed in."""
    fig: dict[str, Any] = {"name": name, "value": float(value), "unit": unit}
    if baseline_name is not None:
        fig["baseline_name"] = baseline_name
        fig["baseline_value"] = float(baseline_value) if baseline_value is not None else None
    if ratio is not None:
        fig["ratio"] = float(ratio)
    if goal is not None:
        if goal_op not in _OPS:
            raise ValueError(f"goal_op must be one of {sorted(_OPS)}, got {goal_op!r}")
        fig["goal"] = float(goal)
        fig["goal_op"] = goal_op
        fig["met"] = bool(_OPS[goal_op](float(value), float(goal)))
    if note:
        fig["note"] = note
    return fig


def write_results(area: str, figures: list[dict[str, Any]], *, notes: list[str] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "area": area,
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "machine": machine(),
        "figures": figures,
    }
    if notes:
        doc["notes"] = notes
    path = RESULTS_DIR / f"{area}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
