"""Training entry points: ``python -m trainers.same_id`` and ``python -m trainers.same2x``."""
