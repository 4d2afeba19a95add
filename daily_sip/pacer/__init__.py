"""The shared pacer: one long-lived process per Daily account that hands out call-start permits.

Daily's rate limits are per account (domain) and counted in sliding windows
(https://docs.daily.co/reference/rest-api, "Rate limits"); every campaign process and every
worker of an account asks this one process when it may send, so together they keep Daily's
exact window. See `daily_sip.tasks.ratelimit` for why this design and how clients use it.

* `app`: the HTTP API (``POST /v1/permits``, ``POST /v1/permits/<id>/done``, ``GET /healthz``),
  one `daily_sip.tasks.window.PermitBook` per account and rate class (a permit counts from its
  grant until its call is answered; the book is the client's too, so it lives in `tasks`);
* `statefile`: the book on disk, so that a restarted pacer knows what was granted before;
* `shared`: the book in Redis (``--redis-url``), so that several pacers serve one account;
* `server`: ``python -m daily_sip.pacer`` (first stdout line = its URL).
"""
