"""Settings refused at start-up."""

from __future__ import annotations

import pytest

from xgenerator.errors import ConfigurationError
from xgenerator.settings import MIN_ADMIN_KEY, load_settings


def test_a_short_admin_key_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="XGEN_ADMIN_KEYS"):
        load_settings(admin_keys="x" * (MIN_ADMIN_KEY + 5) + ",short")
    assert load_settings(admin_keys="x" * MIN_ADMIN_KEY).admin_key_list == ["x" * MIN_ADMIN_KEY]
