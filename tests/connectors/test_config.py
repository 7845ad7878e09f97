"""Channel configuration from the environment: disabled when unset, loud when half set."""

from __future__ import annotations

import pytest

from connectors.common.settings import ConfigError
from connectors.zalo.channel import ZaloInput
from connectors.zalo.config import ZaloSettings

FULL = {
    "ZALO_APP_ID": "1",
    "ZALO_OA_SECRET_KEY": "k",
    "ZALO_ACCESS_TOKEN": "a",
    "ZALO_REFRESH_TOKEN": "r",
    "ZALO_APP_SECRET": "s",
}


def test_unset_zalo_is_disabled_and_full_zalo_is_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ZaloSettings.from_env({}) is None
    for name in FULL:
        monkeypatch.delenv(name, raising=False)
    channel = ZaloInput.from_credentials(None)
    assert channel.settings is None and channel.get_output_channel() is None
    settings = ZaloSettings.from_env(FULL)
    assert settings is not None and settings.can_refresh
    assert (
        settings.api_base_url == "https://openapi.zalo.me"
        and settings.oauth_base_url == "https://oauth.zaloapp.com"
    )
    assert settings.request_info_image_url is None
    image = "https://cskh.cpc.vn/share.png"
    with_image = ZaloSettings.from_env({**FULL, "ZALO_REQUEST_INFO_IMAGE_URL": image})
    assert with_image is not None and with_image.request_info_image_url == image


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZALO_APP_ID": "1"}, "ZALO_OA_SECRET_KEY, ZALO_ACCESS_TOKEN"),
        ({**FULL, "ZALO_APP_SECRET": ""}, "go together"),
        (
            {**FULL, "ZALO_REFRESH_TOKEN": "", "ZALO_APP_SECRET": "", "APP_ENV": "production"},
            "required when APP_ENV",
        ),
        ({**FULL, "APP_ENV": "production", "ZALO_API_BASE_URL": "http://127.0.0.1:1"}, "https"),
        ({**FULL, "ZALO_SEND_RATE": "fast"}, "must be a number"),
        ({**FULL, "ZALO_REQUEST_INFO_IMAGE_URL": "share.png"}, "must be a URL"),
        (
            {**FULL, "APP_ENV": "production", "ZALO_REQUEST_INFO_IMAGE_URL": "http://cskh.cpc.vn/a.png"},
            "https",
        ),
    ],
)
def test_half_or_unsafe_zalo_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ZaloSettings.from_env(env)
