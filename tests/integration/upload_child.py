"""Runs one upload_file in a child process, so a test can SIGKILL it mid-upload.

    python upload_child.py PATH URI PART_SIZE WORKERS

Auth comes from the environment (``LocalOCI.env()``: OCI_CONFIG_FILE, OCIMODEL_SERVICE_ENDPOINT).
Prints the UploadResult as JSON when the upload ends.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from ocimodel.oci.multipart import upload_file


def main(argv: list[str]) -> int:
    path, uri, part_size, workers = argv
    result = upload_file(path, uri, part_size=int(part_size), parallel_process_count=int(workers))
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
