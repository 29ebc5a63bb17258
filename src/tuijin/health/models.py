"""Weekly alignments and health-light episodes."""
