"""Messaging channel connectors (Rasa custom input/output channels).

Each channel is registered in ``credentials.yml`` by module path and reads its configuration from
environment variables, so a channel whose credentials are unset is simply disabled (its webhook
answers 503) instead of breaking the Rasa server. See docs/channels.md.
"""
