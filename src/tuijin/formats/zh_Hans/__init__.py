"""Simplified-Chinese format overrides."""
