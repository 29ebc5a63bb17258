"""API router of tuijin.goals."""

from ninja import Router

router = Router(tags=["goals"])
