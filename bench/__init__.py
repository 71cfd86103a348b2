"""Side-by-side benchmark of Stowage and upstream Placement: ``bash bench/run``."""
