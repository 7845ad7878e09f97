"""Deployment pieces Rasa loads by module path (tracker and lock stores, speed-ups) and config files."""
