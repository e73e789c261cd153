"""``python -m vbtjax.cli``: the ``vbtjax`` command."""

import sys

from . import main

sys.exit(main())
