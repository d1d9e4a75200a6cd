"""orderbridge: move orders from where they are sold to where they are fulfilled, exactly once."""

__version__ = "0.1.0"
