"""DirectAnimator Gradio app (placeholder until the app issue lands: see README)."""

import sys

if __name__ == "__main__":
    print("The Gradio app is not built yet. Use `python -m directanimator.cues` and `python -m directanimator.animate`.")
    sys.exit(0)
