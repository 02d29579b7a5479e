"""ACB v6: properties of the Python reference, and Java (on the member) == Python bit for bit."""

from __future__ import annotations

import math
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.grid.acb import ACB_LADDER_FRAC, ACB_MAX_CUT_FRAC, AcbProcessor, acb_cut_frac, acb_stress_count
from dolphin.grid.records import AcbState

counts = st.floats(min_value=-10.0, max_value=20.0, allow_nan=False)


def test_integer_counts_equal_the_v5_ladder() -> None:
    for n, frac in enumerate(ACB_LADDER_FRAC):
        assert acb_cut_frac(float(n)) == frac
    assert acb_cut_frac(6.0) == acb_cut_frac(50.0) == ACB_MAX_CUT_FRAC


@given(counts)
def test_cut_is_bounded(c: float) -> None:
    assert 0.0 <= acb_cut_frac(c) <= ACB_MAX_CUT_FRAC


@given(counts, counts)
def test_cut_is_monotone_in_the_stress_count(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert acb_cut_frac(lo) <= acb_cut_frac(hi)


@given(st.floats(min_value=0.0, max_value=5.0), st.floats(min_value=1e-9, max_value=1e-3))
def test_cut_is_continuous(c: float, eps: float) -> None:
    # the steepest ladder segment rises 0.30 per unit count
    assert abs(acb_cut_frac(c + eps) - acb_cut_frac(c)) <= 0.30 * eps + 1e-12


def test_missing_data_never_loosens_risk() -> None:
    assert acb_cut_frac(math.nan) == ACB_MAX_CUT_FRAC
    assert acb_cut_frac(math.inf) == ACB_MAX_CUT_FRAC
    assert acb_cut_frac(acb_stress_count([math.nan], [1.0])) == ACB_MAX_CUT_FRAC
    assert acb_cut_frac(acb_stress_count([1.0], [-1.0])) == ACB_MAX_CUT_FRAC


@given(st.lists(st.tuples(st.floats(-1, 2), st.floats(0, 3)), max_size=8))
def test_stress_count_clips_intensities(pairs: list[tuple[float, float]]) -> None:
    s = [p[0] for p in pairs]
    w = [p[1] for p in pairs]
    c = acb_stress_count(s, w)
    assert 0.0 <= c <= sum(w) + 1e-12


def test_processor_versions_and_state() -> None:
    new, cut = AcbProcessor([1.0, 1.0], [1.0, 0.5], ts_ns=5).apply(None)
    assert new == AcbState(1.5, acb_cut_frac(1.5), 1, 5) and cut == acb_cut_frac(1.5)
    new2, _ = AcbProcessor([0.0], [1.0], ts_ns=6).apply(new)
    assert isinstance(new2, AcbState) and new2.version == 2 and new2.cut_frac == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        AcbProcessor([1.0], [])


def _inputs(n: int) -> list[tuple[list[float], list[float]]]:
    rng = random.Random(20261125)
    cases: list[tuple[list[float], list[float]]] = [
        ([], []),
        ([1.0] * 5, [1.0] * 5),
        ([1.0] * 7, [1.0] * 7),
        ([math.nan], [1.0]),
        ([1.0], [math.nan]),
        ([1.0], [-0.5]),
        ([0.0], [math.inf]),
        ([1.0], [math.inf]),
        ([-3.0, 7.0], [1.0, 1.0]),
    ]
    for k in range(1, 4):
        cases.append(([1.0] * k, [1.0] * k))  # exact ladder points
    while len(cases) < n:
        m = rng.randint(1, 8)
        s = [rng.uniform(-0.2, 1.2) for _ in range(m)]
        w = [rng.choice([1.0, 0.5, 0.25, rng.uniform(0.0, 2.0)]) for _ in range(m)]
        cases.append((s, w))
    return cases


@pytest.mark.hazelcast
@pytest.mark.xdist_group("hazelcast")
def test_java_entry_processor_equals_python_reference(hz_cluster: tuple[str, list[str]]) -> None:
    """The Java AcbEntryProcessor on the member returns and stores exactly what Python computes."""
    from dolphin.grid.hazelcast_backend import HazelcastGrid

    cluster, members = hz_cluster
    with HazelcastGrid(cluster_name=cluster, members=members) as grid:
        m = grid.map(f"DOLPHIN_ACB-{uuid.uuid4().hex[:8]}")
        cases = _inputs(400)
        for i, (s, w) in enumerate(cases):
            java_cut = m.execute_on_key(f"k{i % 7}", AcbProcessor(s, w, ts_ns=i))
            py_count = acb_stress_count(s, w)
            py_cut = acb_cut_frac(py_count)
            assert java_cut == py_cut, (s, w, java_cut, py_cut)  # bit-identical doubles
            state = m.get(f"k{i % 7}")
            assert isinstance(state, AcbState)
            assert state.cut_frac == py_cut and state.ts_ns == i
            assert state.stress_count == py_count or (math.isnan(state.stress_count) and math.isnan(py_count))
        assert sum(m.get(f"k{j}").version for j in range(7)) == len(cases)  # type: ignore[union-attr]
