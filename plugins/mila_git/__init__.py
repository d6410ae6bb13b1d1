"""Built-in mila plugin `git`."""
