"""Data sources: each polls a real public API and returns events; none ever raises out of poll."""
