"""The officer's offline web form (ODK Web Forms in a page of ours), under /f/{key}/.

`router()` is mounted by server/app.py; the browser files are served under /static/webform/.
"""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from ..ui import set_language
from .pages import PAGES, KeyProblem, key_problem, officer, static_file


def router() -> Router:
    return Router(
        "/",
        route_handlers=[
            Router(
                "/f",
                route_handlers=PAGES,
                before_request=set_language,
                include_in_schema=False,
                # The /f/{key}/… routes declare the `key_holder` guard; what it refuses (and a
                # form that is not open) is rendered here, one way.
                exception_handlers={KeyProblem: key_problem},
                dependencies={"officer": Provide(officer, sync_to_thread=False)},
            ),
            static_file,
        ],
        include_in_schema=False,
    )
