"""mila-shell-deployer: the ``shell`` deployer, which runs a service's own commands."""

__version__ = "0.1.0"
