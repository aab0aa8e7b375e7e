"""The synthetic world: drawn dancing people with exact cross-ID ground truth, written as a training dataset.

``people.py`` holds identities and motions (the pure maths of who looks how and moves how), ``draw.py`` renders
them, ``world.py`` turns them into clips, references, pseudo pairs and annotations (``python -m trainers.synthetic``).
"""

from trainers.synthetic.world import *  # noqa: F401,F403
from trainers.synthetic.world import __all__  # noqa: F401
