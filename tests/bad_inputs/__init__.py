"""The bad-input corpus."""
