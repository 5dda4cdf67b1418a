"""The helper process of a large CSV zip (see storage.exports._CsvHelper): reads its job as
JSON on stdin, writes its part, exits 0. Run as `python -m storage.export_helper`."""

from __future__ import annotations

import sys

import msgspec

from storage.exports import PartJob, write_part


def main() -> int:
    write_part(msgspec.json.decode(sys.stdin.buffer.read(), type=PartJob))
    return 0


if __name__ == "__main__":
    sys.exit(main())
