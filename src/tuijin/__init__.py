"""Tuijin (推进): sales management for small and mid-sized teams."""

__version__ = "0.1.0"
