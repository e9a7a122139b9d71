"""Entry point: `python -m verify` (see verify/README.md); `python -m verify burn-in ...` is the
burn-in (verify/burn_in/)."""

import sys

if sys.argv[1:2] == ["burn-in"]:
    from verify.burn_in.cli import main as burn_in

    sys.exit(burn_in(sys.argv[2:]))

from verify.cli import main

sys.exit(main())
