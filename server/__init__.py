"""Mentara's interview server: the Starlette app and everything that does I/O."""

__version__ = "0.1.0"
