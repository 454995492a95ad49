"""``python -m tubelet``: the ``tubelet`` command line."""

import sys

from tubelet.cli.main import main

sys.exit(main())
