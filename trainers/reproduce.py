"""Deprecated alias of ``python -m trainers.experiments.reproduce`` (moved with the other experiments), kept for one
release."""

import sys
import warnings

if __name__ == "__main__":
    warnings.warn("python -m trainers.reproduce is now python -m trainers.experiments.reproduce", DeprecationWarning)
    from trainers.experiments.reproduce import main

    sys.exit(main())
else:
    from trainers.experiments.reproduce import *  # noqa: F401,F403
