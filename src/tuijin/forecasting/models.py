"""Daily reports, forecast lines with evidence, correction requests."""
