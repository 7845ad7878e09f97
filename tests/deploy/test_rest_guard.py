"""deploy/rest_guard.py: what Rasa's REST channel accepts as a body (the fuzz test sends the rest)."""

from __future__ import annotations

import pytest
from sanic.exceptions import InvalidUsage

from deploy.rest_guard import check_body


@pytest.mark.parametrize("body", [None, [], 123, "text", {"sender": 5, "message": "x"}, {"message": ["x"]}])
def test_refused(body: object) -> None:
    with pytest.raises(InvalidUsage) as e:
        check_body(body)
    assert e.value.status_code == 400


@pytest.mark.parametrize("body", [{"sender": "a", "message": "xin chào"}, {"message": "x"}, {}])
def test_accepted(body: object) -> None:
    check_body(body)
