"""The ground floor: errors, hashing, atomic writes, data readers, the run record, the task-family
table and the plugin registry. Everything else (models/, methods/, tasks/, harness/, leaderboard/)
builds on it; nothing here imports any of them (tests/core/test_layering.py checks it)."""
