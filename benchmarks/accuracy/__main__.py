"""``python -m benchmarks.accuracy``: see `benchmarks.accuracy.run`."""

from benchmarks.accuracy.run import main

raise SystemExit(main())
