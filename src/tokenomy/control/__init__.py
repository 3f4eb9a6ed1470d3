"""Team control: virtual keys and teams (``keys``), who is asking (``auth``), budgets that reserve before and settle
after each upstream call (``budgets``, ``redis_budgets``), shared rate limits (``ratelimit``), and the request-path
facade that joins them (``admission``). See docs/control.md."""
