"""The Alliance benchmark: `make bench` (see bench/run.py).

Latency is measured by wrk from its own process against gunicorn on PostgreSQL and reported as
ratios to a floor (/healthz) measured in the same run; the no-loss check drives rating
submissions from a separate Python process and reconciles what was acknowledged with what the
database holds. Modules:

- stats.py     pure: percentiles, the ratio table, the results document, wrk output parsing
- lossless.py  the no-loss driver (a process of its own) and its pure reconciliation
- load.py      runs wrk with the Lua scripts in lua/
- server.py    gunicorn, collectstatic, the database (psql), the app's environment
- web.py       a small stdlib HTTP client: login with CSRF, cookies, raw bytes
- data.py      Django ORM side: personas, the bench's empty sessions, the consistency checks
- run.py       the orchestrator behind `make bench`
"""
