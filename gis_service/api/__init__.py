"""HTTP routers, one per resource; they stay thin and call into the package."""
