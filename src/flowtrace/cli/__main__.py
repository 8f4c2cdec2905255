"""``python -m flowtrace.cli``."""

import sys

from . import main

sys.exit(main())
