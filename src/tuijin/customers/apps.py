"""App config for tuijin.customers."""

from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "tuijin.customers"
    label = "customers"
    verbose_name = "Customers"
