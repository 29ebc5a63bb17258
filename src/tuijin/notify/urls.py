"""Page URLs of tuijin.notify (mounted at /notifications/)."""

from django.urls import path

from . import views

app_name = "notify"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("read-all", views.notification_read_all, name="read_all"),
    path("<int:pk>/open", views.notification_open, name="open"),
    path("<int:pk>/read", views.notification_read, name="read"),
    path("robots/", views.robots, name="robots"),
    path("robots/new/", views.robot_new, name="robot_new"),
    path("robots/<int:pk>/edit/", views.robot_edit, name="robot_edit"),
    path("robots/<int:pk>/active", views.robot_active, name="robot_active"),
    path("robots/<int:pk>/test", views.robot_test, name="robot_test"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/retry", views.outbox_retry, name="outbox_retry"),
]
