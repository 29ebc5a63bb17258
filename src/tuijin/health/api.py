"""API router of tuijin.health."""

from ninja import Router

router = Router(tags=["health"])
