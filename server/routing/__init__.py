"""Routing: a pure selector that turns an analysis into a primary model and fallbacks, and the router around it."""
