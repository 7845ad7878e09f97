"""The rule every process applies to its configuration: no development default in production.

Development defaults (tokens, secrets, a generated CA) let `make run` work with no set-up; a deployment
with APP_ENV=production must not start on any of them, or anyone who read the repository could call it.
"""

from __future__ import annotations

from collections.abc import Mapping


def refuse_development_defaults(
    still_default: Mapping[str, bool], error: type[Exception], message: str
) -> None:
    """Raise `error` when any setting still has its development value.

    `still_default` maps what the operator must set (in the order to report) to whether it is still at
    its development value; `message` is the operator's text with `{names}` where those settings go.
    """
    names = [name for name, is_default in still_default.items() if is_default]
    if names:
        raise error(message.format(names=", ".join(names)))
