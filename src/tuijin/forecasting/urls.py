"""Page URLs of tuijin.forecasting (mounted at /forecasts/)."""

from django.urls import path

from . import views

app_name = "forecasting"
urlpatterns = [
    path("", views.home, name="home"),
    path("reports/new", views.report_new, name="report_new"),
    path("reports/<int:pk>/", views.report_detail, name="report_detail"),
    path("reports/<int:pk>/summary", views.report_summary, name="report_summary"),
    path("reports/<int:pk>/evidence-options", views.evidence_options, name="evidence_options"),
    path("reports/<int:pk>/lines/add", views.line_add, name="line_add"),
    path("reports/<int:pk>/lines/<int:line_id>/update", views.line_update, name="line_update"),
    path("reports/<int:pk>/lines/<int:line_id>/remove", views.line_remove, name="line_remove"),
    path("reports/<int:pk>/submit", views.report_submit, name="report_submit"),
    path("reports/<int:pk>/correction", views.correction_new, name="correction_new"),
    path("corrections/", views.corrections, name="corrections"),
    path("corrections/<int:pk>/approve", views.correction_approve, name="correction_approve"),
    path("corrections/<int:pk>/reject", views.correction_reject, name="correction_reject"),
    path("accuracy/", views.accuracy, name="accuracy"),
    path("accuracy/records", views.accuracy_records, name="accuracy_records"),
    path("accuracy/export", views.accuracy_export, name="accuracy_export"),
]
