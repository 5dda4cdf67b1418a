"""The words of ODK Web Forms 0.22 in the page's language.

Web Forms 0.22 has no translation mechanism of its own: its buttons, dialogs and messages are
English text in its templates (translations arrive in a later release). What it does take is
PrimeVue's locale (`$primevue.config.locale`), which its date picker and drop-downs read: month
and day names, the date format, "Today", "No results found". So the form page gets
- `primevue`: that locale's strings (the names of months and days come from the browser's
  Intl, the date format from the page's language), set on the app before it is mounted;
- `text`: each English string the renderer shows, with its translation; form.js replaces those
  strings where the renderer writes them (localize.js). A string may hold `%(name)s`, a part
  that varies ("%(n)s questions with errors.").

The strings are msgids of the UI catalogue (server/ui/locale/id.po), found there by
server/ui/messages.py like every other string of this package; an English page gets none, and
the renderer keeps its own words.
"""

from __future__ import annotations

from typing import Any

from ..ui import i18n
from ..ui.i18n import gettext

RENDERER = "0.22.0"  # the @getodk/web-forms version these strings were read from


def _(message: str) -> tuple[str, str]:
    """An English string of the renderer and its translation."""
    return message, gettext(message)


def renderer_text() -> list[tuple[str, str]]:
    """(English, translation) for every string of the renderer an officer can meet."""
    return [
        # the form
        _("Send"),
        _("Powered by"),
        _("1 question with error."),
        _("%(n)s questions with errors."),
        _("Condition not satisfied: required"),
        _("Condition not satisfied: constraint"),
        _("Add"),
        _("Remove"),
        _("Repeat Item"),
        _("Change language"),
        _("change language"),
        _("Okay"),
        _("Rank items"),
        _("An error occurred while loading this form"),
        _("Technical error details"),
        _("Unknown error"),
        _("Cannot fetch media. Verify the URL and fetch settings."),
        _("Media not found. File: %(file)s"),
        _("Cannot fetch media. Unknown error. File: %(file)s"),
        # photos
        _("Take picture"),
        _("Choose image"),
        _("Captured image preview"),
        # the location
        _("Get location"),
        _("Try again"),
        _("Cannot access location"),
        _("Grant location permission in the browser settings and make sure location is turned on."),
        _(
            "Location unavailable. Enable GPS and browser permissions, then restart the form to try again."
        ),
        _("Finding your location"),
        _("Location will be saved at %(accuracy)s m"),
        _("Time taken to capture location:"),
        _("Previous saved location at %(accuracy)s m"),
        _("Cancel"),
        _("Save location"),
        _("%(accuracy)s m - %(quality)s"),
        _("Good accuracy"),
        _("Poor accuracy"),
        _("Unknown accuracy"),
        _("Accuracy: %(accuracy)s m,"),
        _("Latitude: %(latitude)s,"),
        _("Longitude: %(longitude)s."),
        # the map (map appearances, and a location in a reopened draft)
        _("Unable to load map"),
        _("Graphics issue detected"),
        _("Your browser cannot display the map now. Enable graphics acceleration settings."),
        _("Capturing location..."),
        _("View details"),
        _("Advanced"),
        _("Remove point"),
        _("No point saved"),
        _("No shape saved"),
        _("No trace saved"),
        _("Point saved"),
        _("Shape saved"),
        _("Trace saved"),
        _("Feature saved"),
        _("%(n)s points saved"),
        _("Press and drag to move a point"),
        _("Tap to place a point"),
        _("Tap to move point"),
        _("Use the location button to center on your current location"),
        _("Full Screen"),
        _("Zoom to fit"),
        _("Zoom to current location"),
        _("Undo last change"),
        _("Delete"),
        _("Delete entire shape?"),
        _("Delete entire trace?"),
        _("Are you sure you want to delete this entire shape and start over?"),
        _("Are you sure you want to delete this entire trace and start over?"),
        _("Remove selection"),
        _("Save selected"),
        _("Longitude"),
        _("Latitude"),
        _("Altitude"),
        _("Accuracy"),
        _("Longitude is invalid"),
        _("Latitude is invalid"),
        _("Import data to replace location"),
        _("Paste data in ODK format"),
        _("Enter as: Lat Long Alt Acc (e.g. 45.5 -122.6 15 2; 45.6 -122.7 12 3)"),
        _("Upload a GeoJSON file"),
        _("Upload file"),
        _("Save"),
        _("File is empty."),
        _("Unsupported file type. Please upload a .geojson file."),
        _("Failed to parse file. Ensure it is a valid GeoJSON."),
        _("Incorrect geometry type."),
    ]


def primevue_locale() -> dict[str, Any]:
    """PrimeVue's locale strings (the date picker, drop-downs, dialogs); form.js adds the
    month and day names from the browser's Intl."""
    return {
        "today": gettext("Today"),
        "clear": gettext("Clear"),
        "accept": gettext("Yes"),
        "reject": gettext("No"),
        "cancel": gettext("Cancel"),
        "chooseYear": gettext("Choose year"),
        "chooseMonth": gettext("Choose month"),
        "chooseDate": gettext("Choose date"),
        "prevDecade": gettext("Previous decade"),
        "nextDecade": gettext("Next decade"),
        "prevYear": gettext("Previous year"),
        "nextYear": gettext("Next year"),
        "prevMonth": gettext("Previous month"),
        "nextMonth": gettext("Next month"),
        "weekHeader": gettext("Wk"),
        "emptyFilterMessage": gettext("No results found"),
        "emptySearchMessage": gettext("No results found"),
        "emptyMessage": gettext("No available options"),
        "emptySelectionMessage": gettext("No selected item"),
        "searchMessage": gettext("{0} results are available"),
        "selectionMessage": gettext("{0} items selected"),
        "aria": {
            "close": gettext("Close"),
            "previous": gettext("Previous"),
            "next": gettext("Next"),
            "selectAll": gettext("All items selected"),
            "unselectAll": gettext("All items unselected"),
            "listLabel": gettext("Option list"),
        },
    }


def config() -> dict[str, Any]:
    """What the form page's script needs to speak the page's language."""
    lang = i18n.current.get()
    english = lang == "en"
    return {
        "lang": lang,
        # Day first, as Indonesians write dates; an English page follows the phone's locale.
        "dateOrder": "dmy" if lang == "id" else "",
        "text": [] if english else [list(pair) for pair in renderer_text()],
        "primevue": {} if english else primevue_locale(),
    }
