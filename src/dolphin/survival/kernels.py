"""Pure response profiles of the five categories (no state, no I/O, no clock).

Every function returns a multiplier in [0, 1]; 1 means "full trust", 0 means "no exposure".
Inputs carry their unit in the name. Layers combine these with their own parameters.
"""

from __future__ import annotations

import math

__all__ = [
    "capital_sigmoid_mult",
    "gradient_mult",
    "impulse_mult",
    "invariant_mult",
    "structural_mult",
]


def invariant_mult(ok: bool) -> float:
    """Category 1: binary, instantaneous, undamped."""
    return 1.0 if ok else 0.0


def structural_mult(staleness_s: float, grace_s: float, decay_per_s: float) -> float:
    """Category 2: exp(-lambda * max(0, staleness - grace)); non-increasing in staleness."""
    excess_s = staleness_s - grace_s
    if excess_s <= 0.0:
        return 1.0
    return math.exp(-decay_per_s * excess_s)


def gradient_mult(x: float, deadband: float, span: float, floor: float) -> float:
    """Category 3: 1 inside the deadband, then a straight ramp down to ``floor`` over ``span``.

    Non-increasing in ``x``; NaN (an unknown reading) counts as the worst case.
    """
    if x != x:  # NaN: unverified input -> worst case
        return floor
    excess = x - deadband
    if excess <= 0.0:
        return 1.0
    if excess >= span:
        return floor
    return 1.0 - (1.0 - floor) * (excess / span)


def impulse_mult(since_shock_s: float, depth: float, recover_s: float) -> float:
    """Category 4: drops to ``depth`` on a shock, back to 1.0 linearly over ``recover_s``.

    ``since_shock_s`` < 0 means no shock has been seen.
    """
    if since_shock_s < 0.0 or since_shock_s >= recover_s:
        return 1.0
    return depth + (1.0 - depth) * (since_shock_s / recover_s)


def capital_sigmoid_mult(
    drawdown_frac: float, steepness: float, midpoint_frac: float, deadband_frac: float = 0.0
) -> float:
    """Category 5: 1/(1+exp(k(DD - DD_mid))), normalised so that no drawdown gives exactly 1.

    Normalising by its value at DD = 0 keeps a healthy book at full exposure (the raw sigmoid
    is 0.98 at DD = 0 with k = 20, mid = 0.2); the shape and the midpoint are unchanged.
    ``deadband_frac``: 1 while DD <= deadband, the same curve at DD beyond it (not shifted: the
    midpoint stays ``midpoint_frac``). NaN (an unknown drawdown) is the worst case, 0.
    """
    if drawdown_frac != drawdown_frac:
        return 0.0
    if drawdown_frac <= deadband_frac or drawdown_frac <= 0.0:
        return 1.0
    z = steepness * (drawdown_frac - midpoint_frac)
    z0 = -steepness * midpoint_frac
    # 1/(1+e^z) / (1/(1+e^z0)) = (1+e^z0)/(1+e^z); guard overflow of e^z.
    if z > 700.0:
        return 0.0
    return min(1.0, (1.0 + math.exp(z0)) / (1.0 + math.exp(z)))
