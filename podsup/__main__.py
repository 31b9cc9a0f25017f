"""`python -m podsup` is the same program as the `podsup` console script."""
from podsup.cli import main

raise SystemExit(main())
