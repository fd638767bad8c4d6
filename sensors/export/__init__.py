"""Exports of session files to other formats (EDF+/BDF+); the CSV export, which needs dsp, lives in app."""
