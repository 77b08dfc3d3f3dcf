"""Runs one ``save_model`` in a child process, so a test can SIGKILL it mid-upload.

    python save_child.py ARTIFACT_DIR BUCKET_URI [--part-size BYTES] [--workers N]
                         [--display-name NAME] [--poll-interval SECONDS]

Auth, compartment and project come from the environment (``LocalOCI.env()``,
``PROJECT_COMPARTMENT_OCID``, ``PROJECT_OCID``); the zip of the artifact and its upload journal
are kept in ``$OCIMODEL_WORK_DIR``, where the test watches the journal grow.

Prints one JSON object per line on stdout, flushed at once:

- ``{"event": "progress", "description", "done", "total"}`` while bytes go up (at most every
  0.1 s per bar, and when a bar finishes);
- ``{"event": "upload", ...}``: the ``UploadResult`` of the upload to the bucket;
- ``{"event": "saved", "model_id", "created", "uploaded", "seconds"}`` at the end.

``--part-size`` sets :data:`ocimodel.oci.multipart.DEFAULT_PART_SIZE`, the constant
``choose_part_size`` reads when no part size is passed: ``save_model`` and
``LargeArtifactUploader`` have no part-size parameter (nor an environment variable) today.
``upload_file`` is wrapped (the uploader looks it up on the module at each call) only to print
its result; it runs unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class PrintedProgress:
    """A Progress that prints its state as JSON lines (throttled)."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done = description, total, 0
        self.last = 0.0
        self.lock = threading.Lock()

    def start(self, total: int | None, description: str = "") -> None:
        with self.lock:
            self.total = total
            self.description = description or self.description

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if now - self.last >= 0.1:
                self.last = now
                self._emit()

    def finish(self) -> None:
        with self.lock:
            self._emit()

    def _emit(self) -> None:
        emit(event="progress", description=self.description, done=self.done, total=self.total)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifact_dir")
    parser.add_argument("bucket_uri")
    parser.add_argument("--part-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=9)
    parser.add_argument("--display-name", default="resumed-save")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    args = parser.parse_args(argv)

    from ocimodel.oci import multipart
    from ocimodel.progress import use_progress
    from ocimodel.save import SaveSpec, save_model

    if args.part_size:
        multipart.DEFAULT_PART_SIZE = args.part_size
    real_upload_file = multipart.upload_file

    def upload_file(*a, **kw):
        result = real_upload_file(*a, **kw)
        emit(event="upload", **dataclasses.asdict(result))
        return result

    multipart.upload_file = upload_file
    spec = SaveSpec(
        display_name=args.display_name,
        bucket_uri=args.bucket_uri,
        parallel_process_count=args.workers,
        poll_interval=args.poll_interval,
    )
    t0 = time.perf_counter()
    with use_progress(PrintedProgress):
        saved = save_model(args.artifact_dir, spec)
    emit(
        event="saved",
        model_id=saved.model_id,
        created=saved.created,
        uploaded=saved.uploaded,
        seconds=time.perf_counter() - t0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
