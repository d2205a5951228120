"""`switchyard usage`: the control plane's GET /usage as a terminal table (or its JSON)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

# prompt_tokens include the cache reads and writes, shown apart because they are priced apart.
COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


def fetch_usage(api: str, params: dict[str, str], timeout: float = 10.0) -> dict[str, Any]:
    """The /usage document; a 400 (a bad filter) raises ValueError with the API's message."""
    url = api if api.startswith("http") else f"http://{api}"
    query = f"?{urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/usage{query}", timeout=timeout) as response:
            document: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 400:
            raise ValueError(json.load(error).get("error", "bad request")) from None
        raise
    return document


def _cell(key: str, value: Any) -> str:
    if key == "cost_usd":
        return f"{value:.4f}"
    return str(value) if value != "" else "-"


def render_usage(document: dict[str, Any]) -> str:
    by: list[str] = document["by"]
    header = [*by, *COLUMNS]
    table = [header, *([_cell(k, row.get(k, 0)) for k in header] for row in document["rows"])]
    total = document["total"]
    table.append([*(["total"] + [""] * (len(by) - 1) if by else []), *(_cell(k, total.get(k, 0)) for k in COLUMNS)])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < len(by) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in table
    ]
    for client, until in document.get("refused", {}).items():
        lines.append(f"refused: {client} (over its token limit or budget) until {until:.0f} (epoch seconds)")
    if not document["rows"]:
        lines.append("no usage recorded for these filters")
    return "\n".join(lines)
