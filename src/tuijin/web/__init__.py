"""Server-rendered pages (Django templates + htmx + ECharts) over the domain selectors and services."""
