"""Deprecated alias of ``python -m trainers.experiments.reproduce_eval`` (moved with the other experiments), kept for one
release."""

import sys
import warnings

if __name__ == "__main__":
    warnings.warn("python -m trainers.reproduce_eval is now python -m trainers.experiments.reproduce_eval", DeprecationWarning)
    from trainers.experiments.reproduce_eval import main

    sys.exit(main())
else:
    from trainers.experiments.reproduce_eval import *  # noqa: F401,F403
