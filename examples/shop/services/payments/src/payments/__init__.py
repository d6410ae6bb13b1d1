"""The payments service's Lambda handlers."""
