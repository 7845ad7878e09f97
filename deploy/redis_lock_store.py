"""Rasa's Redis lock store (the scaled topology, deploy/endpoints.scaled.yml) whose waiting tickets
keep their place when they expire (deploy/lock_tickets.py).

Configured as `type: deploy.redis_lock_store.RedisLockStore` with Rasa's own keys (url, port, db,
password, key_prefix, socket_timeout, ...): Rasa builds a store named by module path with the
endpoint configuration only.
"""

from __future__ import annotations

from rasa.core import lock_store
from rasa.utils.endpoints import EndpointConfig

from deploy.lock_tickets import KeepsPlaceWhenExpired


class RedisLockStore(KeepsPlaceWhenExpired, lock_store.RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig | None = None) -> None:
        config = endpoint_config or EndpointConfig()
        super().__init__(host=config.url or "localhost", **config.kwargs)
