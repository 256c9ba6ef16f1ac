"""Volumes and container mounts (local driver): parser, store glue, manager."""
