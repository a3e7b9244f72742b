"""Re-pricing stored calls with today's price table: a new cost version per call, the old one kept,
the rollups corrected by the difference, each UTC day journalled so a crash leaves old or new."""
