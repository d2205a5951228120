"""Usage accounting: tokens and spend of every answer, per client, route, target and model (issue 14)."""
