"""Built-in mila plugin `cloudformation`."""
