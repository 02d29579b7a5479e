"""Running the formal model (SPIN) and validating replay traces against it.

``check_model`` generates the verifier from ``spec/survival.pml`` with the thresholds of a
real config (-D defines), compiles it with gcc and runs an exhaustive safety search.
``check_trace`` turns a controller step trace into a Promela driver that replays every step
through the model's own ``posture_step`` (``spec/survival_core.pml``) and asserts that the
model reaches exactly the posture the controller reached; SPIN runs it as a simulation.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dolphin.core.paths import repo_root
from dolphin.survival.config import SurvivalConfig
from dolphin.survival.events import StepRecord

__all__ = [
    "BROKEN_VARIANTS", "SpinResult", "check_mirror", "check_model", "check_trace", "mirror_driver", "model_defines",
    "spec_dir", "trace_driver",
]

BROKEN_VARIANTS = ("BROKEN_HYST", "BROKEN_DWELL", "BROKEN_KILL_LAG", "BROKEN_GATE_HIB", "BROKEN_CAP_UPGRADE")


@dataclass(frozen=True)
class SpinResult:
    ok: bool
    errors: int
    output: str


def spec_dir() -> Path:
    return repo_root() / "spec"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found on PATH (Debian package listed in scripts/apt-packages.txt)")
    return path


def model_defines(cfg: SurvivalConfig, *, dwell_ticks: int = 3) -> list[str]:
    """-D flags carrying a config's thresholds and its worst-case R_total rise per tick."""
    down, up = cfg.posture.thresholds_pct()
    tick_s = cfg.tick_ms / 1000.0
    rise_pp = 100.0 * tick_s * sum(spec.recovery_per_min / 60.0 for spec in cfg.layers)
    rec = max(1, math.ceil(rise_pp - 1e-9))
    return [
        f"-DDOWN_A={down[0]}", f"-DUP_A={up[0]}",
        f"-DDOWN_S={down[1]}", f"-DUP_S={up[1]}",
        f"-DDOWN_T={down[2]}", f"-DUP_T={up[2]}",
        f"-DDWELL={dwell_ticks}", f"-DREC={rec}",
    ]  # fmt: skip


def check_model(workdir: Path, defines: Sequence[str] = (), *, max_depth: int = 1_000_000, timeout_s: float = 600.0) -> SpinResult:
    """Exhaustive SPIN safety check of spec/survival.pml in ``workdir``; ok iff 0 errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    for src in spec_dir().glob("*.pml"):
        shutil.copy(src, workdir / src.name)
    spin, gcc = _tool("spin"), _tool("gcc")
    gen = subprocess.run([spin, *defines, "-a", "survival.pml"], cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    if gen.returncode != 0:
        return SpinResult(False, -1, gen.stdout + gen.stderr)
    cc = subprocess.run([gcc, "-O2", "-DSAFETY", "-o", "pan", "pan.c"], cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    if cc.returncode != 0:
        return SpinResult(False, -1, cc.stdout + cc.stderr)
    run = subprocess.run(["./pan", f"-m{max_depth}", "-w20"], cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    out = run.stdout + run.stderr
    m = re.search(r"errors: (\d+)", out)
    errors = int(m.group(1)) if m else -1
    complete = "max search depth too small" not in out
    return SpinResult(errors == 0 and complete, errors, out)


def trace_driver(records: Sequence[StepRecord], *, start_ns: int, initial: int, dwell_ns: int) -> str:
    """A Promela driver replaying ``records`` through the model's posture_step.

    The steps become arrays; one loop feeds each step's inputs to the model and asserts that
    the model's posture before the step equals the controller's, that the dwell flag follows
    from the step times and the cause (a cap step never has it: it may only tighten, as in the
    model's cap action), and that the model's next posture equals the controller's. Times are
    whole milliseconds since ``start_ns``.
    """
    core = (spec_dir() / "survival_core.pml").resolve()
    if dwell_ns % 1_000_000:
        raise ValueError(f"dwell must be whole milliseconds for the trace driver, got {dwell_ns} ns")
    n = len(records)
    lines = [
        f'#include "{core}"',
        f"#define DWELL_MS {dwell_ns // 1_000_000}",
        f"#define NSTEPS {max(n, 1)}",
        "int T[NSTEPS]; byte R[NSTEPS]; byte C[NSTEPS]; bool K[NSTEPS]; bool D[NSTEPS]; byte B[NSTEPS]; byte A[NSTEPS];",
        "bool CAPSTEP[NSTEPS];",
        "byte p; byte out; int last_change = 0; bool dwell; int i = 0;",
        "init {",
    ]
    for k, rec in enumerate(records):
        t_ns = rec.ts_ns - start_ns
        if t_ns % 1_000_000:
            raise ValueError(f"step time {rec.ts_ns} is not on a whole millisecond")
        lines.append(
            f"  T[{k}]={t_ns // 1_000_000}; R[{k}]={rec.r_pct}; C[{k}]={rec.cap}; K[{k}]={int(rec.killed)}; "
            f"D[{k}]={int(rec.dwell_ok)}; B[{k}]={rec.before}; A[{k}]={rec.after}; CAPSTEP[{k}]={int(rec.cause == 2)};"
        )
    lines += [
        f"  p = {initial};",
        "  do",
        f"  :: i < {n} ->",
        "     assert(p == B[i]);",
        "     dwell = (T[i] - last_change >= DWELL_MS) && !CAPSTEP[i];",
        "     assert(dwell == D[i]);",
        "     posture_step(p, R[i], C[i], K[i], dwell, out);",
        "     assert(out == A[i]);",
        "     if",
        "     :: out != p -> last_change = T[i]",
        "     :: else -> skip",
        "     fi;",
        "     p = out;",
        "     i++",
        "  :: else -> break",
        "  od;",
        '  printf("TRACE OK %d steps\\n", i)',
        "}",
    ]
    return "\n".join(lines) + "\n"


def check_trace(
    records: Sequence[StepRecord],
    cfg: SurvivalConfig,
    workdir: Path,
    *,
    start_ns: int,
    initial: int,
    timeout_s: float = 300.0,
) -> SpinResult:
    """Validate a controller step trace against the model's transition relation with SPIN."""
    workdir.mkdir(parents=True, exist_ok=True)
    driver = workdir / "trace_check.pml"
    driver.write_text(
        trace_driver(records, start_ns=start_ns, initial=initial, dwell_ns=round(cfg.posture.min_upgrade_dwell_s * 1e9))
    )
    defines = [d for d in model_defines(cfg) if not d.startswith(("-DDWELL", "-DREC"))]
    run = subprocess.run([_tool("spin"), *defines, driver.name], cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    out = run.stdout + run.stderr
    ok = run.returncode == 0 and f"TRACE OK {len(records)} steps" in out and "assertion violated" not in out
    return SpinResult(ok, 0 if ok else 1, out)


def mirror_driver(cfg: SurvivalConfig) -> str:
    """A Promela driver asserting that the Python posture step and gate equal the model's
    on every input (posture x R percent x cap x killed x dwell; posture x killed x kind x taker)."""
    from dolphin.survival.posture import gate_verdict, posture_step

    down, up = cfg.posture.thresholds_pct()
    core = (spec_dir() / "survival_core.pml").resolve()
    steps = [
        (p, r, c, k, d, posture_step(p, r, c, bool(k), bool(d), down, up))
        for p in range(4) for r in range(101) for c in range(4) for k in (0, 1) for d in (0, 1)
    ]  # fmt: skip
    gates = [(p, k, kind, t, int(gate_verdict(p, bool(k), kind, bool(t)))) for p in range(4) for k in (0, 1) for kind in range(3) for t in (0, 1)]
    lines = [
        f'#include "{core}"',
        f"#define NS {len(steps)}",
        f"#define NG {len(gates)}",
        "byte P[NS]; byte R[NS]; byte C[NS]; bool K[NS]; bool D[NS]; byte A[NS];",
        "byte GP[NG]; bool GK[NG]; byte GKIND[NG]; bool GT[NG]; byte GV[NG];",
        "byte out; byte v; int i = 0;",
        "init {",
    ]
    for i, (p, r, c, k, d, a) in enumerate(steps):
        lines.append(f"  P[{i}]={p}; R[{i}]={r}; C[{i}]={c}; K[{i}]={k}; D[{i}]={d}; A[{i}]={a};")
    for i, (p, k, kind, t, v) in enumerate(gates):
        lines.append(f"  GP[{i}]={p}; GK[{i}]={k}; GKIND[{i}]={kind}; GT[{i}]={t}; GV[{i}]={v};")
    lines += [
        "  do",
        "  :: i < NS -> posture_step(P[i], R[i], C[i], K[i], D[i], out); assert(out == A[i]); i++",
        "  :: else -> break",
        "  od;",
        "  i = 0;",
        "  do",
        "  :: i < NG -> gate(GP[i], GK[i], GKIND[i], GT[i], v); assert(v == GV[i]); i++",
        "  :: else -> break",
        "  od;",
        '  printf("MIRROR OK\\n")',
        "}",
    ]
    return "\n".join(lines) + "\n"


def check_mirror(cfg: SurvivalConfig, workdir: Path, *, timeout_s: float = 300.0) -> SpinResult:
    """Run ``mirror_driver`` under SPIN: the Python transition relation equals the model's."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "mirror_check.pml").write_text(mirror_driver(cfg))
    defines = [d for d in model_defines(cfg) if not d.startswith(("-DDWELL", "-DREC"))]
    run = subprocess.run([_tool("spin"), *defines, "mirror_check.pml"], cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    out = run.stdout + run.stderr
    ok = run.returncode == 0 and "MIRROR OK" in out and "assertion violated" not in out
    return SpinResult(ok, 0 if ok else 1, out)
