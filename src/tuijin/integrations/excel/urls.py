"""Import and export page URLs (names are linked from the list pages: excel:export_customers, ...)."""

from django.urls import path

from . import views

app_name = "excel"

urlpatterns = [
    path("import/customers/", views.import_upload, name="import"),
    path("import/customers/template.xlsx", views.import_template, name="template"),
    path("import/jobs/<int:pk>/", views.import_job_detail, name="job"),
    path("import/jobs/<int:pk>/start", views.import_job_start, name="job_start"),
    path("import/jobs/<int:pk>/progress", views.import_job_progress, name="job_progress"),
    path("export/customers.xlsx", views.export_customers, name="export_customers"),
    path("export/opportunities.xlsx", views.export_opportunities, name="export_opportunities"),
    path("export/activities.xlsx", views.export_activities, name="export_activities"),
]
