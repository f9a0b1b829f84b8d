"""Loaded by pytest before Django is set up (see addopts): the environment every test run needs."""

import os

# Tests run with a throwaway key; production always sets SECRET_KEY itself.
os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")

# The test servers speak plain HTTP on localhost: no HTTPS redirect, no secure-only cookies.
for name in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES"):
    os.environ.setdefault(name, "false")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
