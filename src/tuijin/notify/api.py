"""API router of tuijin.notify."""

from ninja import Router

router = Router(tags=["notify"])
