"""``python -m bench``: the side-by-side loop comparison (see bench/run.py)."""

import sys

from .run import main

sys.exit(main())
