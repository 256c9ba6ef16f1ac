"""The ``berth`` command-line client: docker's commands over the Engine API."""

__version__ = "0.1.0"
