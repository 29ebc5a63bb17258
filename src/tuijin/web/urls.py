"""Page URLs (no namespace: settings.LOGIN_URL and LOGIN_REDIRECT_URL name them directly)."""

from django.urls import path

from . import views_activities, views_auth, views_customers, views_home, views_opportunities

urlpatterns = [
    path("login/", views_auth.login_view, name="login"),
    path("logout/", views_auth.logout_view, name="logout"),
    path("account/password/", views_auth.password_change_view, name="password_change"),
    path("language", views_auth.language_view, name="language"),
    path("", views_home.home, name="home"),
    path("customers/", views_customers.customer_list_view, name="customers"),
    path("customers/new/", views_customers.customer_new, name="customer_new"),
    path("customers/<int:pk>/", views_customers.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/edit/", views_customers.customer_edit, name="customer_edit"),
    path("customers/<int:pk>/contacts/new", views_customers.customer_contact_new, name="customer_contact_new"),
    path("customers/<int:pk>/opportunities/new", views_customers.customer_opportunity_new,
         name="customer_opportunity_new"),
    path("customers/<int:pk>/members/add", views_customers.customer_member_add, name="customer_member_add"),
    path("customers/<int:pk>/members/<int:user_id>/remove", views_customers.customer_member_remove,
         name="customer_member_remove"),
    path("customers/<int:pk>/transfer", views_customers.customer_transfer, name="customer_transfer"),
    path("opportunities/", views_opportunities.opportunity_list_view, name="opportunities"),
    path("opportunities/kanban/", views_opportunities.kanban, name="kanban"),
    path("opportunities/<int:pk>/", views_opportunities.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/stage", views_opportunities.opportunity_stage, name="opportunity_stage"),
    path("activities/", views_activities.activity_list_view, name="activities"),
    path("activities/new/", views_activities.activity_new, name="activity_new"),
]
