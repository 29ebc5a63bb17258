"""The demo package as a Django app, only so that its `demo` management command is found
(`tuijin demo`, `call_command("demo")`); it has no models. It sits on top of every domain app."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "tuijin.demo"
    label = "demo"
    verbose_name = "Demo"
