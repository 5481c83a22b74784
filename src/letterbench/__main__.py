"""``python -m letterbench``: the same as the ``letterbench`` command."""

import sys

from letterbench.cli.main import main

sys.exit(main())
