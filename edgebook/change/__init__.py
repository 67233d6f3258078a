"""The change engine: steps, plans and their hash, approval, journal, lock, resume, rollback."""
