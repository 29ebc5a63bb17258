"""Markers for the reliability suite."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: fault tests that take longer or disturb shared services (bounded)")
