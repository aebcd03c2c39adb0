"""``python -m system.local``: the local stack until Ctrl-C."""

import sys

from system.local.command import main

sys.exit(main())
