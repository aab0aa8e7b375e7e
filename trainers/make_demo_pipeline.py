"""Deprecated alias of ``python -m trainers.experiments.make_demo_pipeline`` (moved with the other experiments), kept for one
release."""

import sys
import warnings

if __name__ == "__main__":
    warnings.warn("python -m trainers.make_demo_pipeline is now python -m trainers.experiments.make_demo_pipeline", DeprecationWarning)
    from trainers.experiments.make_demo_pipeline import main

    sys.exit(main())
else:
    from trainers.experiments.make_demo_pipeline import *  # noqa: F401,F403
