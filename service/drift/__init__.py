"""The drift check: per-column tests in numpy (``stats``), Evidently's engine and its HTML report."""
