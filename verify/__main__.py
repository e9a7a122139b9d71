"""Entry point: `python -m verify` runs the suite, `python -m verify burn-in` the burn-in (see
verify/README.md)."""

import sys

from verify.cli import main

sys.exit(main())
