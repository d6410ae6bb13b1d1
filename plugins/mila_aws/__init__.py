"""Built-in mila plugin `aws`."""
