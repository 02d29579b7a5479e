"""ACB v6: the continuous adaptive-circuit-breaker size cut, and its grid processor.

The v5 ladder maps 0/1/2/3/4/5+ active stress signals to a size cut of 0/15/45/55/75/80 %.
v6 makes it continuous: the weighted stress count ``c = sum_i w_i * clip(s_i, 0, 1)``
(signal intensities ``s_i``, weights ``w_i >= 0``, summed left to right) is mapped by
piecewise-linear interpolation of the ladder points (0, 0), (1, .15), (2, .45), (3, .55),
(4, .75), (5, .80), clipped to 0 below c = 0 and to 0.80 from c = 5 on. A NaN signal or weight,
a negative weight or an infinite count gives the maximum cut 0.80 (missing data never loosens
risk). At integer counts v6 equals v5 exactly.

:func:`acb_cut_frac` (the survival plane's :func:`dolphin.survival.acb.acb_v6_cut_frac`) is the reference; the Java ``dolphin.grid.AcbCut`` in ``grid-member/``
performs the same IEEE-754 operations in the same order (tested bit for bit), and
:class:`AcbProcessor` runs it atomically on the member that owns the key
(``IMap.executeOnKey``) or, on the embedded backends, under the map's lock.
"""

from __future__ import annotations

import math
from typing import Sequence

from hazelcast.serialization.api import IdentifiedDataSerializable, ObjectDataInput, ObjectDataOutput

from dolphin.grid.records import AcbState, GridValue
from dolphin.survival.acb import ACB_MAX_CUT_FRAC, ACB_V5_LADDER_CUT_FRAC, acb_v6_cut_frac

__all__ = [
    "ACB_LADDER_FRAC",
    "ACB_MAX_CUT_FRAC",
    "ACB_PROCESSOR_CLASS_ID",
    "ACB_STATE_TYPE_NAME",
    "GRID_FACTORY_ID",
    "AcbProcessor",
    "acb_cut_frac",
    "acb_stress_count",
]

#: Must equal GridDataSerializableFactory.FACTORY_ID / ACB_PROCESSOR_CLASS_ID in grid-member/.
GRID_FACTORY_ID = 1701
ACB_PROCESSOR_CLASS_ID = 1
ACB_STATE_TYPE_NAME = "dolphin.AcbState"

# One definition of the v6 map for the whole system: the survival plane's pure kernel.
ACB_LADDER_FRAC = ACB_V5_LADDER_CUT_FRAC
acb_cut_frac = acb_v6_cut_frac


def acb_stress_count(signals: Sequence[float], weights: Sequence[float]) -> float:
    """Weighted stress count ``sum_i w_i * clip(s_i, 0, 1)``; NaN for NaN input or w_i < 0."""
    if len(signals) != len(weights):
        raise ValueError(f"signals and weights differ in length: {len(signals)} != {len(weights)}")
    count = 0.0
    for s_raw, w_raw in zip(signals, weights):
        s = float(s_raw)
        w = float(w_raw)
        if math.isnan(s) or math.isnan(w) or w < 0.0:
            return math.nan
        if s < 0.0:
            s = 0.0
        elif s > 1.0:
            s = 1.0
        count = count + w * s
    return count


class AcbProcessor(IdentifiedDataSerializable):
    """Apply the ACB v6 cut to one entry of ``DOLPHIN_ACB``; returns the cut fraction.

    The new value is an :class:`AcbState` whose version is the previous one plus one.
    Serialized as (double[] signals, double[] weights, long ts_ns) for the Java twin.
    """

    def __init__(
        self, signals: Sequence[float] = (), weights: Sequence[float] = (), ts_ns: int = 0
    ) -> None:
        if len(signals) != len(weights):
            raise ValueError(f"signals and weights differ in length: {len(signals)} != {len(weights)}")
        self.signals = [float(s) for s in signals]
        self.weights = [float(w) for w in weights]
        self.ts_ns = int(ts_ns)

    def apply(self, old: GridValue) -> tuple[GridValue, object]:
        count = acb_stress_count(self.signals, self.weights)
        cut = acb_cut_frac(count)
        version = old.version + 1 if isinstance(old, AcbState) else 1
        return AcbState(stress_count=count, cut_frac=cut, version=version, ts_ns=self.ts_ns), cut

    # IdentifiedDataSerializable (the Java twin reads the same fields in the same order)
    def write_data(self, object_data_output: ObjectDataOutput) -> None:
        object_data_output.write_double_array(self.signals)
        object_data_output.write_double_array(self.weights)
        object_data_output.write_long(self.ts_ns)

    def read_data(self, object_data_input: ObjectDataInput) -> None:
        self.signals = list(object_data_input.read_double_array())
        self.weights = list(object_data_input.read_double_array())
        self.ts_ns = object_data_input.read_long()

    def get_factory_id(self) -> int:
        return GRID_FACTORY_ID

    def get_class_id(self) -> int:
        return ACB_PROCESSOR_CLASS_ID

    def __repr__(self) -> str:
        return f"AcbProcessor(signals={self.signals}, weights={self.weights}, ts_ns={self.ts_ns})"
