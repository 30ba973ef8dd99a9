"""Learning from reports: the ledger of exact facts, the regression, the counter."""
