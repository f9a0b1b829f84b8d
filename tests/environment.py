"""Loaded by pytest before Django is set up (see addopts): the environment every test run needs."""

import os

# Tests run with a throwaway key; production always sets SECRET_KEY itself.
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
