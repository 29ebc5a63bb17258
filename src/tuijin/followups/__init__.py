"""Activities: every contact with a customer, recorded once."""
