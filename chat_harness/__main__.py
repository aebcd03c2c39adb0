"""``python -m chat_harness``: the same as the ``chat-harness`` command."""

import sys

from chat_harness.cli import main

sys.exit(main())
