"""GraphiQL (development mode, a browser's GET /graphql), from files the vault serves.

The page loads React, ReactDOM, GraphiQL and its explorer plugin from
``/static/vendor/graphiql`` (the npm registry's files, see its ``VENDOR.md``), each
pinned by its Subresource Integrity hash, and starts GraphiQL from ``/static/js/graphiql.js``:
no inline script or style, so its Content-Security-Policy is as strict as the pages'
except for ``data:`` fonts and images, which GraphiQL's style sheet embeds. Unlike
strawberry's page it never writes the query into the URL (a query may hold an e-mail
address).
"""

from __future__ import annotations

from typing import Final

from starlette.responses import HTMLResponse

from api.pages.security import CSP

__all__ = ["GRAPHIQL_CSP", "VENDORED", "graphiql_page"]

_VENDOR: Final = "/static/vendor/graphiql"
_SCRIPTS: Final = (
    ("react.production.min.js", "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"),
    (
        "react-dom.production.min.js",
        "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    ("graphiql.min.js", "HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie"),
    ("plugin-explorer.umd.js", "2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9"),
)
_STYLES: Final = (
    ("graphiql.min.css", "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"),
    ("plugin-explorer.css", "5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi"),
)
GRAPHIQL_CSP: Final = CSP.replace("font-src 'self'", "font-src 'self' data:").replace(
    "img-src 'self'", "img-src 'self' data:"
)
VENDORED: Final = dict((*_SCRIPTS, *_STYLES))


def _html() -> str:
    styles = "\n".join(
        f'  <link rel="stylesheet" href="{_VENDOR}/{name}" integrity="sha384-{digest}">'
        for name, digest in _STYLES
    )
    scripts = "\n".join(
        f'  <script src="{_VENDOR}/{name}" integrity="sha384-{digest}"></script>'
        for name, digest in _SCRIPTS
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>GraphiQL · customer-vault</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
{styles}
  <link rel="stylesheet" href="/static/css/graphiql.css">
</head>
<body>
  <div id="graphiql" class="graphiql-container">Loading…</div>
{scripts}
  <script src="/static/js/graphiql.js"></script>
</body>
</html>
"""


_PAGE: Final = _html()
_HEADERS: Final = {
    "content-security-policy": GRAPHIQL_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def graphiql_page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers=_HEADERS)
