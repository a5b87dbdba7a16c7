"""Pure coordinate computations (no database, no I/O)."""
