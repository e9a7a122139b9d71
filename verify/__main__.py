"""Entry point: `python -m verify` (see verify/README.md)."""

import sys

from verify.cli import main

sys.exit(main())
