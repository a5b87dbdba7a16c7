"""Database access: the embedded cluster, engines and sessions, migrations."""
