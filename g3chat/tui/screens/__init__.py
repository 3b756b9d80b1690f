"""The chat UI's screens, one per module."""
