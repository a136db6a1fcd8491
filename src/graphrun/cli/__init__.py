"""The ``graphrun`` command."""
