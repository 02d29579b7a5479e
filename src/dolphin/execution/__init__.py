"""dolphin.execution: the NautilusTrader agent, SmartPlacer, OTR governor and exits."""

import dolphin.core.config  # noqa: F401  (load the config tree before this plane's config section)
