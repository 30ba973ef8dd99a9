"""``python -m benchmarks.agents``: see `benchmarks.agents.run`."""

from benchmarks.agents.run import main

raise SystemExit(main())
