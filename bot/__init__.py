"""The Rasa bot of cskh-assistant: custom NLU components, custom actions and training data."""
