"""Template editor routes."""
