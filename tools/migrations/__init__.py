"""Migrations: read, prepare, apply."""
