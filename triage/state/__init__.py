"""State: the SQLite file (db.py, the only SQL), its migrations, the run lock, detection."""
