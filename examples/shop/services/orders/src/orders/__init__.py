"""The orders service's Lambda handlers."""
