"""Daily reports with evidence-backed forecast lines, locking, corrections and accuracy (SPEC R1–R4)."""
