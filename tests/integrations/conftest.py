"""Import tests keep progress and heartbeats in the cache: start each test with an empty one.

(SQLite reuses the ids of rolled-back rows, so a key left by an earlier test could name this test's job.)
"""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()
