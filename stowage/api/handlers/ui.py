"""GET /stowage/ui/: a read-only web view of the cloud, for administrators.

The page, its script and its style sheet are static files shipped in the
package (``stowage/ui/``) and, like the API's description, served without a
token: they hold no data. The script asks the Placement API itself for all
it shows, with the token the operator gives it (noauth2's ``admin``, or a
pasted Keystone token), so the view shows exactly what the API's policy
lets that token read.

Caching: the page is revalidated on every load (``no-cache``) and names
its script and style sheet with a digest of their contents
(``app.js?v=<digest>``); asked for by that digest, they are cached for good,
so an upgrade's page never runs a previous release's script.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from stowage.api.http import Request, Response

PATH = "/stowage/ui/"
SCRIPT_PATH = PATH + "app.js"
STYLESHEET_PATH = PATH + "style.css"

# Where the page names the assets' digest.
_DIGEST_MARK = b"__ASSETS__"
_REVALIDATE = "no-cache"
_FOREVER = "public, max-age=31536000, immutable"
# Only this origin's script, styles and API; no framing (the page acts on a
# token the operator typed in).
_PAGE_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Assets:
    page: Asset
    script: Asset
    stylesheet: Asset
    # Of the script and the style sheet, as the page's links carry it.
    digest: str


@functools.cache
def shipped_assets() -> Assets:
    """The files of ``stowage/ui/``, read once, on the first request."""
    folder = resources.files("stowage") / "ui"
    script = (folder / "app.js").read_bytes()
    stylesheet = (folder / "style.css").read_bytes()
    digest = hashlib.sha256(script + b"\0" + stylesheet).hexdigest()[:16]
    page = (folder / "index.html").read_bytes().replace(_DIGEST_MARK, digest.encode())
    return Assets(
        page=Asset(page, "text/html; charset=utf-8"),
        script=Asset(script, "text/javascript; charset=utf-8"),
        stylesheet=Asset(stylesheet, "text/css; charset=utf-8"),
        digest=digest,
    )


def page(request: Request, services) -> Response:
    """The page (index.html), revalidated on every load."""
    response = _answer(shipped_assets().page, _REVALIDATE)
    response.add_header("content-security-policy", _PAGE_POLICY)
    response.add_header("referrer-policy", "no-referrer")
    return response


def script(request: Request, services) -> Response:
    """The page's ES module (app.js)."""
    return _versioned(request, shipped_assets().script)


def stylesheet(request: Request, services) -> Response:
    """The page's style sheet (style.css)."""
    return _versioned(request, shipped_assets().stylesheet)


def _versioned(request: Request, asset: Asset) -> Response:
    """Cached for good when asked for by the current digest, else revalidated."""
    current = request.query.get("v") == [shipped_assets().digest]
    return _answer(asset, _FOREVER if current else _REVALIDATE)


def _answer(asset: Asset, cache_control: str) -> Response:
    response = Response(body=asset.body, content_type=asset.content_type)
    response.add_header("cache-control", cache_control)
    response.add_header("x-content-type-options", "nosniff")
    return response
