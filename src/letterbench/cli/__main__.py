"""``python -m letterbench.cli`` (as under ``torchrun -m``): the same as the ``letterbench`` command."""

import sys

from letterbench.cli.main import main

sys.exit(main())
