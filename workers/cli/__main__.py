"""``python -m workers.cli``: the ``alerts`` command."""

import sys

from workers.cli.main import main

sys.exit(main())
