"""Integrations with the outside: Excel/CSV import-export, chat platforms (later)."""
