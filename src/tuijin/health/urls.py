"""Page URLs of tuijin.health (namespace "health")."""

from django.urls import path

from . import views

app_name = "health"
urlpatterns = [
    path("", views.home, name="home"),
    path("alignments/submit", views.alignment_submit, name="alignment_submit"),
    path("evaluate", views.evaluate, name="evaluate"),
    path("reps/<int:pk>/", views.rep_detail, name="rep"),
    path("blockers/<int:pk>/resolve", views.blocker_resolve, name="blocker_resolve"),
    path("pools/", views.pools, name="pools"),
    path("grading/", views.grade_rules, name="grade_rules"),
    path("grading/new/", views.grade_rule_edit, name="grade_rule_new"),
    path("grading/<int:pk>/", views.grade_rule_edit, name="grade_rule_edit"),
    path("settings/", views.health_settings_edit, name="settings"),
]
