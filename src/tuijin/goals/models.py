"""Objectives, key results, targets per org unit and rep, weekly alignments, health lights, reports."""
