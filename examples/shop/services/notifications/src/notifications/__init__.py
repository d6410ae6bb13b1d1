"""The notifications service's Lambda handlers."""
