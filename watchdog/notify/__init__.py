"""Notifiers: one per receiver type. Each formats purely and sends at the edge."""
