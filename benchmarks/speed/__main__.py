"""Entry point: ``python -m benchmarks.speed``."""

from benchmarks.speed.run import main

raise SystemExit(main())
