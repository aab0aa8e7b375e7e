"""Deprecated alias of ``python -m trainers.experiments.vae`` (moved with the other experiments), kept for one
release."""

import sys
import warnings

if __name__ == "__main__":
    warnings.warn("python -m trainers.vae is now python -m trainers.experiments.vae", DeprecationWarning)
    from trainers.experiments.vae import main

    sys.exit(main())
else:
    from trainers.experiments.vae import *  # noqa: F401,F403
