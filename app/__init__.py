"""Medius application: session model, analysis, CLI and (later) the Qt views."""

__version__ = "0.1.0"
