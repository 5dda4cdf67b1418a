"""Export writers: records in, `bytes` chunks of about 64 KiB out, never a whole file in memory.

Each writer takes an iterable of records (anything shaped like `Record`: a submission's
`RowMeta`, its values and its attachments) and yields chunks as it goes, so the first bytes
leave while later records are still being read:

- `write_csv`: the root table as one CSV;
- `write_csv_zip`: Central's Briefcase layout: `{formId}.csv`, `{formId}-{repeat}.csv`,
  `media/{file}` (a file whose name cannot be used as it is goes elsewhere, listed in
  `renamed-files.txt`: see `write_csv_zip`). The root table is zipped as its rows arrive;
  repeat tables and the list of media are spooled to anonymous temporary files meanwhile,
  then zipped after it;
- `write_xlsx`: one sheet per table, streamed by `forms.xlsx` (the root sheet as its rows
  arrive, repeat sheets spooled to temporary files meanwhile, as for the CSV zip);
- `write_geojson`: a FeatureCollection of the submissions that have a point;
- `write_media_zip`: photos named `{OPD}/{date}_{instanceName or short id}_{question}_{n}.{ext}`
  (the OPD question and the folder for none are the caller's: see forms.instruments),
  each streamed from the blob store into the zip (stored without compression).

A file the blob store has lost is left out of a zip and listed in its `missing-files.txt`;
any other failure raises, which drops the connection (never an error text in a 200 body).

Zips are made by stream-zip. Every entry name in one archive is unique, also when case is
ignored (Windows and macOS unzip `a.jpg` and `A.jpg` to one file): `UsedNames` remembers
the names taken (in memory, about 0.5 KB a name; stream-zip itself keeps about 150 bytes per
file for the zip's central directory, which can only be written at the end).

The package: `records` (what the writers read), `csvfiles`, `sheets` (XLSX), `geojson`, `media`
(the writers), `naming` (file names, `UsedNames`) and `zips` (what the zip writers share).
"""

from .csvfiles import csv_line, write_csv, write_csv_zip
from .geojson import write_geojson
from .media import find_photo_field, photo_fields, write_media_zip
from .naming import UsedNames, extension, safe_part, sanitize_filename, short_id
from .records import CHUNK, MediaRef, OpenBlob, Record
from .sheets import write_xlsx

__all__ = [
    "CHUNK",
    "MediaRef",
    "OpenBlob",
    "Record",
    "UsedNames",
    "csv_line",
    "extension",
    "find_photo_field",
    "photo_fields",
    "safe_part",
    "sanitize_filename",
    "short_id",
    "write_csv",
    "write_csv_zip",
    "write_geojson",
    "write_media_zip",
    "write_xlsx",
]
