"""Storage: all SQL lives here, one module per table family."""
