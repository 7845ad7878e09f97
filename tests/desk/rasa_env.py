"""A real Rasa server for the desk tests.

By default the project's `rasa_stack` (trained model, action server, signing service). Setting
DESK_TEST_RASA_MODEL=<model.tar.gz> starts a Rasa server on that model instead (no action server),
which is enough for the desk tests that do not depend on the bot's NLU; useful while the bot's
model is being retrained. DESK_TEST_RASA_URL + DESK_TEST_RASA_EVENTS_DB use an already running Rasa.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RasaEnv:
    rasa_url: str
    token: str
    events_db: Path
    signing_url: str
    signing_token: str

    def desk_env(self) -> dict[str, str]:
        return {
            "RASA_URL": self.rasa_url,
            "RASA_AUTH_TOKEN": self.token,
            "RASA_EVENTS_DB": str(self.events_db),
            "SIGNING_SERVICE_URL": self.signing_url,
            "SIGNING_SERVICE_TOKEN": self.signing_token,
        }
