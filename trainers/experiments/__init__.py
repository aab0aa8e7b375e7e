"""Experiments built on the trainers: the reproduction of the paper's ablations (``reproduce``, ``reproduce_eval``,
``reproduce_report``) and the embedded demo model's build (``vae``: its small VAE, ``make_demo_pipeline``: its
pipeline folder; ``scripts/make_demo_model.sh`` runs the whole recipe)."""
