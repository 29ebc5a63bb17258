"""Shared foundations: change trail (hash-chained audit events), errors, request ids."""
