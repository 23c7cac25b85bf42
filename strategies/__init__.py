"""Server halves of the algorithms, one module each; every module registers its own
strategies in :data:`fedsparse.catalog.STRATEGIES` when imported (the catalog imports
them all before its first lookup)."""
