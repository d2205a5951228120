"""The container tier's engine and image: every test here gets a built `switchyard:local`, or skips (fails,
where SWITCHYARD_CONTAINER_TESTS=required) with the one-line reason there is none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.containers.engine import REQUIRED, NoEngineError, build_image, engine

# testcontainers' Ryuk reaper is an image pulled from a registry at the first start; the fixtures here
# remove what they start instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

# Building the image (pip installs Envoy's wheel) takes far beyond the suite's default 120 s the first time.
CONTAINER_TEST_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.container)
            item.add_marker(pytest.mark.timeout(CONTAINER_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = engine()
    except NoEngineError as error:
        if REQUIRED:
            pytest.fail(str(error))
        pytest.skip(str(error))
    yield client
    client.close()


@pytest.fixture(scope="session")
def switchyard_image(docker_client: Any) -> str:
    """`switchyard:local`, built from this tree; SWITCHYARD_IMAGE points switchyard.testing at it."""
    try:
        image, seconds = build_image(docker_client)
    except NoEngineError as error:
        pytest.skip(str(error))
    print(f"\nbuilt {image} in {seconds:.0f}s")
    os.environ["SWITCHYARD_IMAGE"] = image
    return image


@pytest.fixture(autouse=True)
def _image_for_every_container_test(switchyard_image: str) -> None:
    """Every test here runs against the image built from this tree (the docs example names no fixture)."""
