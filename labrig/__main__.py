"""`python -m labrig`: the same as the `labrig` command."""

import sys

from labrig.cli import main

sys.exit(main())
