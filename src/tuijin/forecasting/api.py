"""API router of tuijin.forecasting."""

from ninja import Router

router = Router(tags=["forecasting"])
