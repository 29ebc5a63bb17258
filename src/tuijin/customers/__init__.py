"""Customers, contacts, team members, transfers and duplicate checks."""
