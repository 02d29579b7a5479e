"""The SPIN model: exhaustive check, broken variants caught, Python mirror, trace validation."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from dolphin.survival.config import PostureConfig, SurvivalConfig
from dolphin.survival.events import Event, StepRecord
from dolphin.survival.formal import BROKEN_VARIANTS, check_mirror, check_model, check_trace, model_defines
from dolphin.survival.replay import load_scenario, run_replay, write_outputs


def test_model_holds_all_properties_with_the_shipped_thresholds(tmp_path: Path) -> None:
    res = check_model(tmp_path, model_defines(SurvivalConfig()))
    assert res.ok, res.output[-3000:]
    assert "errors: 0" in res.output and "assertion violations\t+" in res.output


@pytest.mark.parametrize("variant", BROKEN_VARIANTS)
def test_each_deliberately_broken_model_is_caught(tmp_path: Path, variant: str) -> None:
    res = check_model(tmp_path, [*model_defines(SurvivalConfig()), f"-D{variant}"])
    assert not res.ok and res.errors >= 1, res.output[-3000:]
    assert "assertion violated" in res.output


def test_defines_follow_the_config() -> None:
    cfg = SurvivalConfig(posture=PostureConfig(apex_down=0.80, apex_up=0.90), tick_ms=10_000)
    d = model_defines(cfg)
    assert "-DDOWN_A=80" in d and "-DUP_A=90" in d and "-DREC=4" in d  # 10 s ticks: R may rise 3.2 pp per tick


def test_python_posture_step_and_gate_equal_the_model_on_every_input(tmp_path: Path) -> None:
    res = check_mirror(SurvivalConfig(), tmp_path)
    assert res.ok, res.output[-2000:]


def _read_replay(out: Path) -> tuple[dict, list[StepRecord], list[Event]]:
    lines = (out / "trace.jsonl").read_bytes().splitlines()
    header = msgspec.json.decode(lines[0])
    steps = [msgspec.json.decode(line, type=StepRecord) for line in lines[1:]]
    events = [msgspec.json.decode(line, type=Event) for line in (out / "events.jsonl").read_bytes().splitlines()]
    return header, steps, events


def test_replay_event_log_is_a_run_of_the_model(tmp_path: Path) -> None:
    """Trace validation: the storm replay's log, read back from disk, replayed through the model."""
    scenario = load_scenario("storm")
    cfg = msgspec.structs.replace(SurvivalConfig(), tick_ms=round(scenario.tick_s * 1000))
    write_outputs(run_replay(scenario, cfg), cfg, tmp_path / "out")
    header, steps, events = _read_replay(tmp_path / "out")
    assert len(steps) > 3000 and header["dwell_ns"] == 60 * 10**9
    res = check_trace(steps, cfg, tmp_path / "spin", start_ns=header["start_ns"], initial=header["initial"])
    assert res.ok, res.output[-2000:]
    # Every posture event is exactly one model transition, in order, and nothing else changed posture.
    changes = [(s.ts_ns, s.before, s.after) for s in steps if s.before != s.after]
    names = ("APEX", "STALKER", "TURTLE", "HIBERNATE")
    logged = [(e.ts_ns, names.index(e.old), names.index(e.new)) for e in events if e.kind == "posture"]
    assert logged == changes and len(changes) >= 10
    kinds = {e.kind for e in events}
    assert {"kill", "rearm", "cancel_all", "cap", "layer"} <= kinds


def test_a_tampered_trace_is_rejected(tmp_path: Path) -> None:
    scenario = load_scenario("storm")
    cfg = msgspec.structs.replace(SurvivalConfig(), tick_ms=round(scenario.tick_s * 1000))
    result = run_replay(scenario, cfg)
    steps = list(result.steps)
    k = next(i for i, s in enumerate(steps) if s.before == 0 and s.after == 0 and s.r_pct >= 92)
    steps[k] = msgspec.structs.replace(steps[k], r_pct=50)  # claims APEX survived R = 0.50
    res = check_trace(steps, cfg, tmp_path, start_ns=result.start_ns, initial=result.initial)
    assert not res.ok and "assertion violated" in res.output
