"""Import and export page URLs."""

from django.urls import path

urlpatterns: list = []
