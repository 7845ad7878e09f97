"""Turn Rasa events (from the tracker or the event broker) into messages the desk can display."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from common.personal_text import mask_personal

HANDOFF_ACTION = "action_request_handoff"
MAX_TEXT = 4000


# A link that carries its own proof (the signing service's signed, expiring document and certificate
# links): whoever holds it reads the customer's documents, so only the customer's own chat gets it.
PRIVATE_LINK = re.compile(r"https?://[^\s\"'<>]*[?&]sig=[^\s\"'<>]*")
PRIVATE_LINK_SHOWN = "[liên kết riêng của khách hàng]"


def redact_links(text: str) -> str:
    return PRIVATE_LINK.sub(PRIVATE_LINK_SHOWN, text)


def for_staff(text: str) -> str:
    """What agents see of any text: no private links, phones, e-mails, ID numbers or typed codes."""
    return mask_personal(redact_links(text))


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _buttons(data: dict[str, Any], customer: bool) -> list[dict[str, str]]:
    """Buttons as `{"title", "payload"}`, or `{"title", "url"}` for a link button. The desk (not
    `customer`) sees private links replaced by a marker."""
    out = []
    for b in (data.get("buttons") or data.get("quick_replies") or [])[:20]:
        if not isinstance(b, dict):
            continue
        title = str(b.get("title", ""))[:200]
        url = next((v for v in (b.get("url"), b.get("payload")) if _is_url(v)), None)
        if url is not None:
            shown = str(url)[:2000] if customer else redact_links(str(url))[:500]
            out.append({"title": title, "url": shown})
        else:
            out.append({"title": title, "payload": str(b.get("payload", ""))[:500]})
    return out


def _desk_file(raw: object) -> dict[str, str] | None:
    if not isinstance(raw, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(raw.get("sha256", ""))):
        return None
    kind = "image" if raw.get("kind") == "image" else "pdf"
    return {"sha256": str(raw["sha256"]), "name": str(raw.get("name") or "tệp")[:120], "kind": kind}


def _customer_file(raw: object) -> dict[str, str] | None:
    """An image or file the customer sent (Zalo: its URL; Telegram: its name and file_id). `ref`
    names it for the desk's route `/conversations/{id}/customer-files/{ref}`
    (agent_desk/customer_file_views.py), which finds it again in that conversation's tracker: the
    browser never passes the URL or the file_id. Empty when there is nothing to fetch."""
    if not isinstance(raw, dict):
        return None
    url = raw.get("url")
    file_id = raw.get("file_id")
    source = (
        f"telegram:{file_id}"
        if isinstance(file_id, str) and file_id
        else (f"url:{url}" if _is_url(url) and len(str(url)) <= 2000 else "")
    )
    return {
        "kind": "image" if raw.get("kind") == "image" else "file",
        "name": mask_personal(str(raw.get("name") or ""))[:200],
        "caption": str(raw.get("caption") or "")[:200],
        "url": str(url)[:2000] if _is_url(url) else "",
        "ref": hashlib.sha256(source.encode()).hexdigest()[:32] if source else "",
    }


def message_from_event(event: dict[str, Any], customer: bool = False) -> dict[str, Any] | None:
    """A displayable message for user/bot events and handoff markers; None for everything else.
    `customer`: for the customer's own web chat (/demo), which keeps its private document links;
    the desk gets them replaced by a marker (agents never open a customer's documents)."""
    kind = event.get("event")
    try:
        ts = float(event.get("timestamp") or 0)
    except (TypeError, ValueError):
        ts = 0.0
    if kind == "user":
        text = str(event.get("text") or "")
        text = text[:MAX_TEXT] if customer else for_staff(text[:MAX_TEXT])
        intent = (event.get("parse_data") or {}).get("intent") or {}
        sent_file = _customer_file((event.get("metadata") or {}).get("customer_file"))
        if sent_file is not None:  # connectors/common/customer_files.py: the text is a placeholder
            text = for_staff(sent_file.get("caption", ""))
        return {
            "kind": "user",
            "customer_file": sent_file,
            "text": text[:MAX_TEXT],
            "ts": ts,
            "intent": intent.get("name"),
            "channel": event.get("input_channel"),
        }
    if kind == "bot":
        data = event.get("data") or {}
        metadata = event.get("metadata") or {}
        custom = data.get("custom")
        show = (lambda t: t) if customer else for_staff
        attachment = data.get("attachment")
        return {
            "kind": "bot",
            "text": show(str(event.get("text") or ""))[:MAX_TEXT],
            "ts": ts,
            "buttons": _buttons(data, customer),
            "image": data.get("image") if isinstance(data.get("image"), str) else None,
            "attachment": show(attachment) if isinstance(attachment, str) else None,
            "custom": show(json.dumps(custom, ensure_ascii=False))[:1000] if custom else None,
            "agent": metadata.get("agent_name") if isinstance(metadata, dict) else None,
            # Written by the notifier: a notice, not an answer (its delivery state is listed apart).
            "notice": metadata.get("notice") if isinstance(metadata, dict) else None,
            # "sms": an agent's text sent by SMS after Zalo's window (agent_desk/channel_window.py);
            # bot_failure: the canned text of a failed turn (connectors/common/bot_failures.py).
            "via": metadata.get("via") if isinstance(metadata, dict) else None,
            "bot_failure": metadata.get("bot_failure") if isinstance(metadata, dict) else None,
            # A file an agent sent (agent_desk/attachments.py): shown through the desk, not the signed link.
            "file": _desk_file(metadata.get("desk_file")) if isinstance(metadata, dict) else None,
        }
    if kind == "action" and event.get("name") == HANDOFF_ACTION:
        return {"kind": "system", "text": "Khách hàng yêu cầu gặp nhân viên", "ts": ts}
    if kind == "pause" and (event.get("metadata") or {}).get("csat"):  # agent_desk/csat.py
        return {"kind": "system", "text": "Bot tạm dừng, chờ góp ý khảo sát của khách", "ts": ts}
    if kind == "pause":
        return {"kind": "system", "text": "Bot tạm dừng, nhân viên đang hỗ trợ", "ts": ts}
    if kind == "resume":
        return {"kind": "system", "text": "Bot hoạt động trở lại", "ts": ts}
    return None


def messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in (message_from_event(e) for e in events) if m is not None]


def latest_slot(events: list[dict[str, Any]], name: str) -> Any:
    value = None
    for e in events:
        if e.get("event") == "slot" and e.get("name") == name:
            value = e.get("value")
    return value


def preview(msgs: list[dict[str, Any]], limit: int = 3) -> list[dict[str, Any]]:
    """The last few customer/bot lines, shortened, for the queue; the customer's last line always shows."""
    lines = [m for m in msgs if m["kind"] in {"user", "bot"} and m["text"]]
    tail = lines[-limit:]
    last_user = next((m for m in reversed(lines) if m["kind"] == "user"), None)
    if last_user is not None and last_user not in tail:
        tail = [last_user] + tail[1:]
    return [
        {
            "kind": m["kind"],
            "text": (m["text"][:157] + "…") if len(m["text"]) > 160 else m["text"],
            # An agent's line is labelled with the agent, not "Bot".
            **({"agent": str(m["agent"])[:100]} if m.get("agent") else {}),
            # When it was said: two desk processes both seeing a broker event add it once.
            **({"ts": m["ts"]} if m.get("ts") else {}),
        }
        for m in tail
    ]
