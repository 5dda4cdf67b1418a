"""Find every interface string: `_("…")` in templates, `gettext("…")` in the UI's Python
(server/ui/ and server/webform/).

Used by the test that keeps `locale/id.po` complete, and handy to update the catalogue.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
_CALL = re.compile(r"""\b(?:_|gettext)\(\s*(?P<q>["'])(?P<text>(?:(?!(?P=q)).)+)(?P=q)\s*[,)]""")
_PLURAL = re.compile(r"""\bngettext\(\s*"([^"]+)"\s*,\s*"([^"]+)\"""")


def message_ids() -> set[str]:
    found: set[str] = set()
    sources = list((HERE / "templates").glob("*.html")) + [
        p for p in HERE.glob("*.py") if p.name != "messages.py"
    ]
    # The officer's web form (server/webform/) shares this catalogue.
    webform = HERE.parent / "webform"
    sources += list((webform / "templates").glob("*.html")) + list(webform.glob("*.py"))
    for path in sources:
        text = path.read_text(encoding="utf-8")
        found.update(match.group("text") for match in _CALL.finditer(text))
        for singular, plural in _PLURAL.findall(text):
            found.update((singular, plural))
    return found


if __name__ == "__main__":  # print the ids, one a line, to update locale/id.po by hand
    for message in sorted(message_ids()):
        print(message)
