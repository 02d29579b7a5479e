"""dolphin.grid: the state grid (embedded by default, Hazelcast when one machine is not enough).

Use :func:`dolphin.grid.factory.open_grid` to get a :class:`~dolphin.grid.protocol.Grid` for
the configured backend.
"""

import dolphin.core.config  # noqa: F401  (first: core.config imports dolphin.grid.config)
