"""`make demo`: the real daemon against local stand-ins of the real APIs (run.py, servers.py)."""
