"""The orders example app."""
