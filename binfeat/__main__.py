"""``python -m binfeat``: the same as the ``binfeat`` command."""

import sys

from binfeat.cli import main

sys.exit(main())
