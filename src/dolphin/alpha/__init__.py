"""dolphin.alpha: the Oracle (signals, order-book features, Alpha Rank Score, net expected value).

Import order note: ``dolphin.core.config`` imports :mod:`dolphin.alpha.config` to build the config
tree, and that module needs the base types of ``dolphin.core.config``. Importing the core config
first here makes ``import dolphin.alpha.config`` work whichever module is imported first.
"""

import dolphin.core.config  # noqa: F401
