"""Prefect's own standards for blocks (description, documentation URL, field descriptions,
code example, logo) over every block of ocimodel.blocks."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import ocimodel.blocks

BLOCKS = [getattr(ocimodel.blocks, name) for name in ocimodel.blocks.__all__]


def test_every_block_of_the_package_is_checked() -> None:
    assert len(BLOCKS) == 2 and all(Block.is_block_class(b) for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, indirect=True, ids=lambda b: b.__name__)
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, request) -> type[Block]:
        return request.param
