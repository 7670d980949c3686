"""Fixtures: test models (written once per run with the built `longcat` binary) and a shared server."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import longcat_testlib as lib  # noqa: E402


def pytest_configure(config):
    assert lib.BINARY.exists(), f"build the binary first (swift build): {lib.BINARY} is missing"
    assert lib.FIXTURES.is_dir(), f"fixtures not found at {lib.FIXTURES}"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def random_model(models_dir):
    return lib.write_random_model(models_dir / "random")


@pytest.fixture(scope="session")
def long_model(models_dir):
    """An 8192-token context, so that a generation can be kept running for seconds while a test acts."""
    return lib.write_random_model(models_dir / "long", context=8192)


@pytest.fixture(scope="session")
def tool_model(models_dir):
    directory = models_dir / "tool-caller"
    reply = lib.write_tool_call_model(directory)
    return directory, reply


@pytest.fixture(scope="session")
def server(random_model):
    """One server for the tests that do not need their own options."""
    s = lib.Server(random_model)
    yield s
    assert s.stop() == 0, "the server must exit cleanly on SIGTERM"


@pytest.fixture
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
