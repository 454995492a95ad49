"""``python -m engine``: the ``tubelet`` command line."""

import sys

from engine.cli import main

sys.exit(main())
