"""Import jobs: an uploaded file, its dry-run report, and progress for large files."""
