"""common/env_numbers.py: the settings readers of the signing service and the agent desk."""

from __future__ import annotations

import pytest

from agent_desk.config import ConfigError as DeskConfigError
from agent_desk.config import _float
from common.env_numbers import env_number
from signing_service.settings import ConfigError as SigningConfigError
from signing_service.settings import _int


class Bad(Exception):
    pass


def test_default_when_unset_or_blank() -> None:
    assert env_number({}, "X", 7, int, Bad) == 7
    assert env_number({"X": "  "}, "X", 7, int, Bad, lo=1) == 7


def test_value_within_bounds() -> None:
    assert env_number({"X": " 12 "}, "X", 7, int, Bad, lo=1, hi=20) == 12
    assert env_number({"X": "0.5"}, "X", 1.0, float, Bad, lo=0.1) == 0.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "X must be an integer, got 'abc'"),
        ("0", "X must be between 1 and 20, got 0"),
        ("21", "X must be between 1 and 20, got 21"),
    ],
)
def test_errors_name_the_variable(raw: str, message: str) -> None:
    with pytest.raises(Bad) as err:
        env_number({"X": raw}, "X", 7, int, Bad, lo=1, hi=20, kind="an integer")
    assert str(err.value) == message


def test_one_sided_bounds() -> None:
    with pytest.raises(Bad, match="at least 2"):
        env_number({"X": "1"}, "X", 3, int, Bad, lo=2)
    with pytest.raises(Bad, match="at most 5"):
        env_number({"X": "6"}, "X", 3, int, Bad, hi=5)


def test_each_service_raises_its_own_error() -> None:
    with pytest.raises(SigningConfigError, match="OTP_X must be between 1 and 9"):
        _int({"OTP_X": "10"}, "OTP_X", 5, 1, 9)
    with pytest.raises(DeskConfigError, match="DESK_X must be a number"):
        _float({"DESK_X": "soon"}, "DESK_X", 1.0, 0.0)
