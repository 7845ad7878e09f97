"""Development stack helpers: start the assistant's processes, cache the trained model."""
