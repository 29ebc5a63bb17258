"""Page URLs of tuijin.goals (mounted at /goals/)."""

from django.urls import path

from . import views

app_name = "goals"
urlpatterns = [
    path("", views.home, name="home"),
    path("objectives/new/", views.objective_new, name="objective_new"),
    path("objectives/<int:pk>/", views.objective_detail, name="objective_detail"),
    path("objectives/<int:pk>/key-results/new", views.key_result_new, name="key_result_new"),
    path("key-results/<int:pk>/", views.cascade_view, name="cascade"),
    path("targets/<int:pk>/allocate/", views.allocate, name="allocate"),
    path("board/", views.my_board, name="my_board"),
    path("board/<int:user_id>/", views.board_view, name="board"),
    path("team/", views.team_board_view, name="team"),
    path("figures/<int:pk>/records", views.figure_records, name="figure_records"),
    path("reports/", views.reports, name="reports"),
    path("reports/<int:pk>/", views.report_detail, name="report_detail"),
    path("reports/<int:pk>/records", views.report_records, name="report_records"),
    path("reports/<int:pk>/excel", views.report_xlsx, name="report_xlsx"),
    path("reports/<int:pk>/pdf", views.report_pdf, name="report_pdf"),
]
