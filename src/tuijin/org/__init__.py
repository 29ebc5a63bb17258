"""Org tree, users and roles, API tokens, and who-can-see-whom (SPEC P3)."""
