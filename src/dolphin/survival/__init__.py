"""dolphin.survival: the multiplicative survival controller (R_total, postures, kill path, sizing).

The config tree is imported first: it imports this plane's config section at its end, which
breaks the import cycle whichever module is imported first.
"""

import dolphin.core.config  # noqa: F401
