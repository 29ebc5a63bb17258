"""Products, pipelines and stages from industry templates, opportunities, transfers."""
