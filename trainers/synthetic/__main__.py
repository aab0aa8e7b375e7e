"""``python -m trainers.synthetic``: write a synthetic world (see ``trainers.synthetic.world``)."""

import sys

from trainers.synthetic.world import main

sys.exit(main())
