"""Self-contained Textual widgets, one per module."""
