"""The operator's window on the fleet: `bosun ui`, a read-only dashboard and REST API.

One aiohttp server (the `ui` extra, imported only by `controller.web.server`) answers
server-rendered HTML pages (Jinja2, autoescaped, inline SVG charts, no script) and the
versioned REST API under `/api/v1` (docs/api.md). Nothing here writes to the bucket.

    reader   what the bucket holds, read with the operators' own views
             (controller.operations.views) and cached by ETag; rollout samples and
             desired documents seen while the server runs
    api      the API's answers as values: filters, JSON / XML / CSV bodies
    charts   SVG of a rollout's new-version against old-version numbers
    pages    the HTML pages (templates/, static/)
    server   routes, the token check, security headers, the run loop

It sits between the CLI (which starts it) and the rooms it reads through: operations
(views) and shell (the lease and spec loaders the controller itself uses).
"""
