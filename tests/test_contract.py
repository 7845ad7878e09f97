"""The contract between processes (common/), as each process applies it (issue 20).

The same typed request code, APP_ENV value and chat channel must mean the same thing in the bot, the
connectors, the signing service, the desk and the REST guard; each case below goes through every
process's own entry point, not only through `common`.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from rasa_sdk import Tracker

from common.chat_identity import (
    CHAT_CHANNELS,
    CONVERSATION_HEADER,
    DESK_CHANNEL,
    SESSION_CHANNELS,
    chat_channel_of,
)
from common.folding import fold, strip_diacritics
from common.production import APP_ENVS, AppEnvError, app_env, is_production
from common.request_code import (
    MAX_TEXT_SCAN,
    REQUEST_CODE_RE,
    find_request_code,
    is_request_code,
    normalize_request_code,
    normalize_unit_code,
)

CANONICAL = "PC05TK0000123"  # a demo request of the signing service
ARABIC_INDIC = "PC05TK٠٠٠٠١٢٣"  # digits U+0660..U+0669, as an Arabic keyboard types them
FULL_WIDTH = "ＰＣ05TK0000123"  # full-width letters, as some East Asian IMEs type them
TYPED = [
    CANONICAL,
    ARABIC_INDIC,
    FULL_WIDTH,
    "pc05-tk 0000123",
    "ＰＣ０５ＴＫ－００００１２３",
    "PC05TK००००१२३",
]
NOT_CODES = [
    "PC05TK000012",  # 6 digits
    "PC05TK00001234",  # 8 digits
    "XX05TK0000123",
    "PC05TKı000123",  # dotless i is not a digit, and not a letter that str.upper() may turn into I
    "PC05Tı0000123",
    # What NFKC would have made ASCII (review of issue 20): letters and digits of other kinds.
    "ſC05TK0000123",  # long s → S
    "PC05\u212aK0000123",  # Kelvin sign → K
    "\u216dC05TK0000123",  # Roman numeral one hundred → C
    "\U0001d40f\U0001d402" + "05TK0000123",  # mathematical bold P, C
    "PC05TK\u246900123",  # circled ten → "10": one character would become two digits
    "PC05TK000012\u00b3",  # superscript three
    CANONICAL + " " * 30 + "x",  # a cut input must not turn into a code
    "",
    "   ",
]

# ---- request code -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", TYPED)
def test_every_typed_form_normalises_to_the_ascii_code(raw: str) -> None:
    assert normalize_request_code(raw) == CANONICAL


@pytest.mark.parametrize("raw", NOT_CODES)
def test_what_is_not_a_code(raw: str) -> None:
    assert normalize_request_code(raw) is None


@pytest.mark.parametrize("raw", [None, 5, 123.0, ["PC05TK0000123"], {"value": CANONICAL}])
def test_payload_values_that_are_not_text_are_no_code(raw: object) -> None:
    assert normalize_request_code(raw) is None
    assert normalize_unit_code(raw) is None


def test_the_pattern_is_ascii_only() -> None:
    assert REQUEST_CODE_RE.match(CANONICAL)
    assert not REQUEST_CODE_RE.match(ARABIC_INDIC)
    assert not REQUEST_CODE_RE.match(CANONICAL + "\n")


def test_canonical_check_does_not_normalise() -> None:
    assert is_request_code(CANONICAL)
    for raw in ("pc05tk0000123", ARABIC_INDIC, FULL_WIDTH, f" {CANONICAL}", None):
        assert not is_request_code(raw), raw


def test_unit_codes() -> None:
    for raw in ("PC05TK", "pc05 tk", "ＰＣ05-tk", "PC٠٥TK"):
        assert normalize_unit_code(raw) == "PC05TK", raw
    for raw in ("PC5TK", "PC05T", "PC05TKX", CANONICAL, "PC05Tı"):
        assert normalize_unit_code(raw) is None, raw


@pytest.mark.parametrize("raw", TYPED)
def test_a_code_inside_free_text(raw: str) -> None:
    assert find_request_code(f"mã của tôi là {raw} nhé") == CANONICAL
    assert find_request_code(f"mã của tôi là {raw}.") == CANONICAL


def test_no_code_in_free_text() -> None:
    for text in ("không có mã", "PC05TK000012 và 12", "pc pc pc 05", "", None, 42):
        assert find_request_code(text) is None, text


def test_the_scan_is_bounded_and_linear() -> None:
    """A fuzzer sends 200,000 characters; near-codes repeated must not make the scan quadratic."""
    for text in ("pc05tk" * 40_000, "pc 05 tk 000 " * 20_000, "٠" * 200_000, "Ｐ" * 200_000):
        started = time.perf_counter()
        assert find_request_code(text) is None
        assert time.perf_counter() - started < 1.0
    # Only the first MAX_TEXT_SCAN characters are read.
    assert find_request_code("x" * MAX_TEXT_SCAN + CANONICAL) is None
    assert find_request_code("x" * (MAX_TEXT_SCAN - len(CANONICAL)) + CANONICAL) == CANONICAL


@pytest.mark.parametrize("raw", TYPED)
def test_the_bot_reads_the_typed_code_the_same_way(raw: str) -> None:
    from bot.actions.common import find_request_code as action_find
    from bot.actions.common import normalize_request_code as action_normalize
    from bot.actions.lookup import codes_in
    from bot.components.request_code_values import normalise_codes

    assert action_normalize(raw) == CANONICAL  # a slot value (lookup_code)
    assert action_find(f"mã {raw}") == CANONICAL  # a form's free-text answer
    tracker = Tracker("u1", {}, {"text": f"tra cứu {raw} giúp tôi"}, [], False, None, {}, None)
    assert codes_in(tracker) == [CANONICAL]  # every code of the latest message
    entity = {"entity": "request_code", "value": raw, "start": 0, "end": len(raw)}
    assert normalise_codes([entity])[0]["value"] == CANONICAL  # the NLU's entity value


@pytest.mark.parametrize("raw", TYPED)
def test_the_telegram_deep_link_reads_the_code_the_same_way(raw: str) -> None:
    from connectors.telegram.updates import start_text

    assert start_text(raw) == CANONICAL
    assert start_text("PC05TK000012") == "/greet"


@pytest.fixture(scope="module")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from signing_service.settings import load_settings

    var = tmp_path_factory.mktemp("contract-signing")
    return load_settings(
        {
            "APP_ENV": "test",
            "SIGNING_VAR_DIR": str(var),
            "DATABASE_URL": f"sqlite:///{var / 'signing.db'}",
            "OUTBOX_PATH": str(var / "outbox.jsonl"),
            "SIGNING_SERVICE_TOKEN": "contract-token-0123",
            "PUBLIC_BASE_URL": "http://testserver.local",
        }
    )


@pytest.fixture
async def service(aiohttp_client: Callable[..., Any], service_settings: Any) -> Any:
    from signing_service.http.app import create_app

    return await aiohttp_client(create_app(service_settings))


AUTH = {"Authorization": "Bearer contract-token-0123"}


async def test_the_signing_service_finds_the_request_by_each_typed_form(service: Any) -> None:
    for raw in TYPED:
        async with service.get(f"/v1/requests/{quote(raw, safe='')}", headers=AUTH) as resp:
            assert resp.status == 200, raw
            assert (await resp.json())["code"] == CANONICAL
    async with service.get(f"/v1/requests/{quote('PC05Tı0000123')}", headers=AUTH) as resp:
        assert resp.status == 400


# ---- chat channels --------------------------------------------------------------------------------

# Every input channel name Rasa may report for a customer message: ours, and Rasa's own built-in ones.
RASA_INPUT_CHANNELS = ["rest", "zalo", "telegram", "web", "socketio", "cmdline", "callback", "ZALO", None, ""]


def test_channel_sets() -> None:
    assert "socketio" not in CHAT_CHANNELS
    assert {"rest", "zalo", "telegram", "web"} == CHAT_CHANNELS
    assert SESSION_CHANNELS == CHAT_CHANNELS | {DESK_CHANNEL}
    assert DESK_CHANNEL not in CHAT_CHANNELS
    assert CONVERSATION_HEADER == "X-Conversation-Id"


@pytest.mark.parametrize("input_channel", RASA_INPUT_CHANNELS)
def test_the_bot_only_sends_channels_the_service_knows(input_channel: str | None) -> None:
    from bot.actions.common import chat_channel

    tracker = Tracker("u1", {}, {}, [], False, None, {}, None)
    if input_channel is not None:
        tracker.events.append({"event": "user", "input_channel": input_channel, "text": "hi"})
    assert chat_channel_of(input_channel) in CHAT_CHANNELS
    assert chat_channel(tracker) == chat_channel_of(input_channel)
    assert chat_channel_of("zalo") == "zalo" and chat_channel_of("socketio") == "rest"


async def test_the_service_accepts_each_channel_the_bot_sends(service: Any) -> None:
    for input_channel in RASA_INPUT_CHANNELS:
        headers = {**AUTH, "X-Chat-Channel": chat_channel_of(input_channel), "X-Chat-User": "contract-u1"}
        async with service.get(f"/v1/requests/{CANONICAL}/verification", headers=headers) as resp:
            assert resp.status == 200, (input_channel, await resp.text())
    # The service does refuse a channel that is not a customer channel (so the loop above can fail).
    headers = {**AUTH, "X-Chat-Channel": "socketio", "X-Chat-User": "contract-u1"}
    async with service.get(f"/v1/requests/{CANONICAL}/verification", headers=headers) as resp:
        assert resp.status == 400


# ---- APP_ENV ------------------------------------------------------------------------------------

APP_ENV_CASES = {
    "production ": "production",
    "Production": "production",
    "PRODUCTION": "production",
    " test": "test",
    "": "development",
    "  ": "development",
    "development": "development",
}
REFUSED = ["prod", "dev", "production1", "staging"]


@pytest.mark.parametrize(("raw", "expected"), APP_ENV_CASES.items())
def test_app_env_is_read_one_way(raw: str, expected: str) -> None:
    assert app_env({"APP_ENV": raw}) == expected
    assert is_production({"APP_ENV": raw}) is (expected == "production")


def test_app_env_unset_is_development(monkeypatch: pytest.MonkeyPatch) -> None:
    assert app_env({}) == "development"
    monkeypatch.setenv("APP_ENV", " Production")
    assert app_env() == "production" and is_production()
    monkeypatch.delenv("APP_ENV")
    assert app_env() == "development" and APP_ENVS == ("development", "test", "production")


@pytest.mark.parametrize("raw", REFUSED)
def test_an_unknown_app_env_is_refused_with_a_clear_message(raw: str) -> None:
    with pytest.raises(AppEnvError) as caught:
        app_env({"APP_ENV": raw})
    assert str(caught.value) == f"APP_ENV must be development, test or production, got {raw!r}"
    with pytest.raises(AppEnvError):
        is_production({"APP_ENV": raw})


# Each process's own settings loader, given only APP_ENV (plus what it needs to load at all). In
# production every one of them refuses its development defaults, so "loads" means "not production".
def _signing(env: dict[str, str], tmp: Path) -> None:
    from signing_service.settings import load_settings

    load_settings({"SIGNING_VAR_DIR": str(tmp), **env})


def _desk(env: dict[str, str], tmp: Path) -> None:
    from agent_desk.config import Settings

    Settings.from_env({"RASA_EVENTS_DB": str(tmp / "events.db"), **env})


def _actions(env: dict[str, str], tmp: Path) -> None:
    from bot.actions.settings import Settings

    Settings.from_env(env)


def _action_server(env: dict[str, str], tmp: Path) -> None:
    from bot.action_server import ActionServerSettings

    ActionServerSettings.from_env(env)


def _connectors(env: dict[str, str], tmp: Path) -> None:
    from connectors.common.settings import ConfigError, is_production
    from connectors.telegram.config import TelegramSettings

    production = is_production(env)
    # The channel's own loader too: without TELEGRAM_SECRET_TOKEN it refuses to start in production.
    try:
        TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": "123456:contract-test-secret-0123456789", **env})
    except ConfigError as exc:
        assert production and "APP_ENV=production" in str(exc), exc
    if production:
        raise ConfigError("APP_ENV=production")


def _rest_guard(env: dict[str, str], tmp: Path) -> None:
    from deploy import rest_guard

    rest_guard.channel_token(env)  # no REST_CHANNEL_TOKEN: Rasa refuses to start in production only


LOADERS: dict[str, Callable[[dict[str, str], Path], None]] = {
    "signing service": _signing,
    "agent desk": _desk,
    "action settings": _actions,
    "action server": _action_server,
    "connectors": _connectors,
    "rest guard": _rest_guard,
}


def _outcome(loader: Callable[[dict[str, str], Path], None], value: str, tmp: Path) -> str:
    try:
        loader({"APP_ENV": value}, tmp)
    except Exception as exc:  # each process has its own error class; the message tells them apart
        message = str(exc)
        if "APP_ENV must be development, test or production" in message:
            assert repr(value) in message, message
            return "refused"
        if "production" in message.lower():
            return "production"
        raise
    return "not production"


@pytest.mark.parametrize("process", LOADERS)
def test_every_process_reads_app_env_the_same_way(process: str, tmp_path: Path) -> None:
    loader = LOADERS[process]
    for raw, expected in APP_ENV_CASES.items():
        want = "production" if expected == "production" else "not production"
        assert _outcome(loader, raw, tmp_path) == want, (process, raw)
    for raw in REFUSED:
        assert _outcome(loader, raw, tmp_path) == "refused", (process, raw)


# ---- Vietnamese folding -------------------------------------------------------------------------

SAMPLES = {
    "Nguyễn Văn Đức": ("Nguyen Van Duc", "nguyen van duc"),
    "  Trần   Thị Bích  Ngọc ": ("  Tran   Thi Bich  Ngoc ", "tran thi bich ngoc"),
    "ĐIỆN LỰC QUẢNG NAM": ("DIEN LUC QUANG NAM", "dien luc quang nam"),
    "hoà thuỷ khoẻ": ("hoa thuy khoe", "hoa thuy khoe"),
    "tra cu\u0301u ho\u0302\u0300 sơ": ("tra cuu ho so", "tra cuu ho so"),  # IME combining marks
    "Ký hợp đồng\tmua bán điện": ("Ky hop dong\tmua ban dien", "ky hop dong mua ban dien"),
    "PC05TK0000123": ("PC05TK0000123", "pc05tk0000123"),
}


def _legacy_strip(text: str) -> str:
    """bot/components/normalizer.fold before issue 20 (the NLU model was trained on its output)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@pytest.mark.parametrize(("text", "expected"), SAMPLES.items())
def test_folding_samples(text: str, expected: tuple[str, str]) -> None:
    assert strip_diacritics(text) == expected[0]
    assert fold(text) == expected[1]


def _legacy_fold(text: str) -> str:
    """signing_service/text.fold and agent_desk/folding.fold before issue 20 (stored name indexes)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(stripped.lower().split())


@pytest.mark.parametrize("text", ["A\u034fn", "Lan\ufe0f", "한국", "Nguyễn  Văn Đức", "ĐẶNG THỊ À"])
def test_fold_is_the_services_and_desks_fold(text: str) -> None:
    assert fold(text) == _legacy_fold(text)


def test_strip_diacritics_is_the_normalizers_fold_on_every_latin_letter() -> None:
    from bot.components.normalizer import fold as nlu_fold
    from bot.components.normalizer import normalize_token

    letters = "".join(chr(c) for c in range(0x00C0, 0x1F00) if chr(c).isalpha())
    for c in letters + " " + "".join(SAMPLES):
        assert nlu_fold(c) == strip_diacritics(c) == _legacy_strip(c), hex(ord(c))
    assert normalize_token("Đồng") == "dong" and normalize_token("hoà") == "hoa"


def test_trainer_folds_like_the_bot() -> None:
    from trainer import textnorm

    assert textnorm.folded_key("Hợp đồng, mua bán ĐIỆN!") == "hop dong mua ban dien"
    assert textnorm.strip_diacritics("Đà Nẵng") == "Da Nang"
