"""Built-in mila plugin `local`."""
