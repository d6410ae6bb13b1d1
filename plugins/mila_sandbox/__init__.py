"""Built-in mila plugin `sandbox`."""
