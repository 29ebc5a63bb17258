"""Excel/CSV import of customers with contacts, and Excel export of lists (SPEC P4)."""
