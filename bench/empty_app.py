"""The baseline of SPEC §7: an empty Litestar POST handler, served like `sentry-jira serve`."""

from __future__ import annotations

from litestar import Litestar, post


@post("/extensions/jira/issue-updated/", status_code=202, sync_to_thread=False)
def empty() -> None:
    return None


app = Litestar(route_handlers=[empty], debug=False)


if __name__ == "__main__":
    import sys

    from adapters.http.server import run_server

    run_server(app, host="127.0.0.1", port=int(sys.argv[1]))
