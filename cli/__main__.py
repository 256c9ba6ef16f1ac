"""``python -m cli``: the same as the ``berth`` command."""

import sys

from cli.main import main

sys.exit(main())
