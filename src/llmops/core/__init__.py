"""Core: errors, settings, ids, clock, HTTP client, database engine and migrations.

Imports no domain package. Every domain builds on it.
"""
