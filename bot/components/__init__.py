"""Custom Rasa NLU components for Vietnamese customer messages."""
