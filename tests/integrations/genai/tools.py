"""Tools for automatic function calling.

No ``from __future__ import annotations`` here on purpose: older google-genai releases read the
annotations at runtime and cannot resolve them from strings.
"""

__all__ = ["get_weather"]


def get_weather(city: str) -> str:
    """The weather in a city (a tool for automatic function calling)."""
    return f"sunny in {city}"
