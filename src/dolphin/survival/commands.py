"""`dolphin survival replay | check-model`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from dolphin.core.config import DolphinConfig

__all__ = ["register"]


def _replay(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.survival.replay import load_scenario, run_replay, write_outputs

    console = Console()
    scenario = load_scenario(args.scenario)
    with console.status(f"replaying {scenario.name} ({scenario.duration_s / 3600:.1f} h)"):
        result = run_replay(scenario, cfg.survival)
        paths = write_outputs(result, cfg.survival, Path(args.out))
    console.print(f"{scenario.name}: {len(result.t_s)} ticks, events {dict(result.log.counts)}")
    for kind, path in paths.items():
        console.print(f"  {kind:8s} {path}")
    return 0


def _check_model(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.survival.formal import check_model, model_defines

    res = check_model(Path(args.workdir), model_defines(cfg.survival))
    print(res.output)
    print("model check:", "PASSED (errors: 0)" if res.ok else f"FAILED (errors: {res.errors})")
    return 0 if res.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("survival", help="survival controller: replay scenarios, check the formal model")
    ssub = p.add_subparsers(dest="survival_command", metavar="SUBCOMMAND")
    ssub.required = True
    r = ssub.add_parser("replay", help="replay a scripted sensor timeline; write PNG, event log, trace")
    r.add_argument("--scenario", default="storm", help="builtin name (storm, calm) or a .toml/.json scenario file")
    r.add_argument("--out", default="var/survival/replay", help="output directory")
    r.set_defaults(func=_replay)
    m = ssub.add_parser("check-model", help="run SPIN on spec/survival.pml with this config's thresholds")
    m.add_argument("--workdir", default="var/survival/spin", help="where pan.c is generated and built")
    m.set_defaults(func=_check_model)
