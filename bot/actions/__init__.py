"""Custom actions of the bot (run by `python -m rasa_sdk --actions bot.actions`).

One module per area: lookup, documents, amendment, signing, general (cancel, fallback, handoff).
The settings are checked on import so a misconfigured action server stops at start-up.
"""

from bot.actions import amendment, documents, general, lookup, queue_wait, signing  # noqa: F401
from bot.actions.settings import Settings

Settings.from_env()
