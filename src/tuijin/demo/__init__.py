"""Demo data: the org skeleton with the documented logins, and realistic generated history."""
