"""Tests of tuijin.health."""
