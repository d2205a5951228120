"""The live status page: plain HTML, CSS and JavaScript files in this folder, served as they are by the status
API at GET / (no build step, nothing loaded from elsewhere). The page polls GET /status itself and keeps the
history its charts need in the browser, so the control plane stores nothing for it."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from aiohttp import web

# The page may load only its own files and talk only to its own origin: no CDN, no inline script or style, no
# framing. Text from the routing YAML is put on the page as text (never as markup), and this header is the
# second line of defence should that ever slip.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new release's files must reach an open tab on its next reload, not a cached copy.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class PageFile:
    """One file of the page: the URL path it is served at, its name in this folder, its media type."""

    url_path: str
    file_name: str
    content_type: str


PAGE_FILES = (
    PageFile("/", "index.html", "text/html"),
    PageFile("/status_page.js", "status_page.js", "text/javascript"),
    PageFile("/status_page.css", "status_page.css", "text/css"),
    PageFile("/favicon.svg", "favicon.svg", "image/svg+xml"),
)


def read_page_file(file_name: str) -> bytes:
    """A file of this folder, wherever the package is installed (a wheel, an editable install, a zip)."""
    return files(__package__).joinpath(file_name).read_bytes()


def page_response(page_file: PageFile, body: bytes) -> web.Response:
    charset = None if page_file.content_type.startswith("image/") else "utf-8"
    return web.Response(body=body, content_type=page_file.content_type, charset=charset, headers=SECURITY_HEADERS)


def add_page_routes(app: web.Application) -> None:
    """GET (and HEAD) for each page file; the files are read once, here, so a missing one fails at start-up."""
    for page_file in PAGE_FILES:
        body = read_page_file(page_file.file_name)

        async def serve(_: web.Request, page_file: PageFile = page_file, body: bytes = body) -> web.Response:
            return page_response(page_file, body)

        app.router.add_get(page_file.url_path, serve)
