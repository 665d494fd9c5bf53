"""Staging throughput against raw s3transfer, on the embedded SeaweedFS, in one process.

Prints `name: value` lines (issue #5), medians of ROUNDS runs on one file of random bytes:

- ``staging_size_mib``: the size of that file, as written;
- ``staging_in_ratio``: raw boto3 ``upload_file`` time / our stage-in time (`Stager.stage_file`:
  sha256 of the file, one HEAD, the upload with the digest as metadata), same ``TransferConfig``;
  target >= 0.95. Our stage-in hashes the file every round, as for a new dataset (each round
  uploads under a new key; the runner's content address would be found after the first);
- ``staging_out_ratio``: raw ``download_file`` time / our stage-out time (`Stager.fetch`, as
  ``finish_job`` fetches an output: download to a temporary file, sha256 while it arrives,
  checked against the manifest's size and digest, moved into place);
- ``staging_in_mb_s``, ``staging_in_raw_mb_s``, ``staging_out_mb_s``, ``staging_out_raw_mb_s``
  and ``disk_copy_mb_s`` (a plain copy of the same file: the physical limit here);
- ``sha256_mb_s`` and ``cpus``, which bound both ratios: a new input is hashed before its content
  address is known; a download is hashed while it arrives, which is free only while a CPU is;
- ``restage_requests`` and ``restage_ratio`` (restage time / our stage-in time): an input already
  in the bucket, staged as the runner stages an input whose SHA-256 Galaxy keeps (content
  address, digest given); target <= 2 requests, < 1% of a full upload.

Environment: BENCH_SIZE_MIB (default 1024), BENCH_ROUNDS (default 5).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.clients.staging import DEFAULT_TRANSFER, Download, Sha256Cache, Stager, Upload  # noqa: E402
from galaxy_argo.local.s3 import SeaweedS3  # noqa: E402

SIZE_MIB = int(os.environ.get("BENCH_SIZE_MIB", "1024"))
MIB = 1024 * 1024
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="galaxy-argo-bench-") as tmp:
        root = Path(tmp)
        data = root / "dataset.bin"
        with data.open("wb") as handle:
            block = os.urandom(8 * MIB)
            for _ in range(SIZE_MIB // 8):
                handle.write(block)
            handle.write(block[: (SIZE_MIB % 8) * MIB])
        size = data.stat().st_size
        mb = size / 1e6
        with SeaweedS3(root / "state", access_key="benchkey", secret_key="benchsecret-0123456789") as s3:
            client = s3.client()
            stager = Stager(client, s3.bucket, "bench")
            raw_up, ours_up, raw_down, ours_down, copies = [], [], [], [], []
            staged: dict[str, Upload] = {}
            stager.stage_file(data, "warm-up")
            for i in range(ROUNDS):
                raw_key, ours_key = f"raw/{i}", f"ours/{i}"

                def raw_in(key: str = raw_key) -> None:
                    client.upload_file(str(data), s3.bucket, key, Config=DEFAULT_TRANSFER)

                def ours_in(key: str = ours_key) -> None:
                    stager.hashes = Sha256Cache()  # a new dataset is hashed: count it
                    staged[key] = stager.stage_file(data, key)

                def raw_out(key: str = raw_key) -> None:
                    client.download_file(s3.bucket, key, str(root / "raw.out"), Config=DEFAULT_TRANSFER)

                def ours_out(key: str = ours_key) -> None:
                    upload = staged[key]  # size and sha256 as the pod's manifest gives them
                    stager.fetch(Download(upload.key, root / "ours.out", upload.size, upload.sha256))

                # Alternate who goes first: the server's state after one transfer biases the next.
                pairs = [((raw_in, raw_up), (ours_in, ours_up)), ((raw_out, raw_down), (ours_out, ours_down))]
                for pair in pairs:
                    for action, results in pair if i % 2 == 0 else pair[::-1]:
                        results.append(timed(action))
                copies.append(timed(lambda: shutil.copyfile(data, root / "copy.out")))
                for name in ("raw.out", "ours.out", "copy.out"):
                    (root / name).unlink()
            known = stager.stage_file(data)  # the input's content-addressed object, as the runner keys it
            calls: list[str] = []
            client.meta.events.register("before-send.s3.*", lambda request, **_: calls.append(request.method))

            def restage_one() -> None:
                stager.hashes = Sha256Cache()  # the digest comes from Galaxy, not from this cache
                if stager.stage_file(data, sha256=known.sha256).uploaded:
                    raise SystemExit("an input already in the bucket was uploaded again: benchmark void")

            restage = [timed(restage_one) for _ in range(ROUNDS)]
            requests_per_restage = len(calls) / ROUNDS
        up_raw, up_ours = statistics.median(raw_up), statistics.median(ours_up)
        down_raw, down_ours = statistics.median(raw_down), statistics.median(ours_down)
        print(f"staging_size_mib: {size / MIB:g}")
        print(f"staging_in_ratio: {up_raw / up_ours:.3f}")
        print(f"staging_in_mb_s: {mb / up_ours:.0f}")
        print(f"staging_in_raw_mb_s: {mb / up_raw:.0f}")
        print(f"staging_out_ratio: {down_raw / down_ours:.3f}")
        print(f"staging_out_mb_s: {mb / down_ours:.0f}")
        print(f"staging_out_raw_mb_s: {mb / down_raw:.0f}")
        print(f"disk_copy_mb_s: {mb / statistics.median(copies):.0f}")
        # The check both directions pay for: a file's sha256 (read from the page cache), and
        # the CPUs the client, its hashing and the S3 server share on this machine.
        hash_times = [timed(lambda: Sha256Cache().sha256(data)) for _ in range(ROUNDS)]
        print(f"sha256_mb_s: {mb / statistics.median(hash_times):.0f}")
        print(f"cpus: {os.cpu_count()}")
        print(f"restage_requests: {requests_per_restage:.0f}")
        print(f"restage_ratio: {statistics.median(restage) / up_ours:.5f}")


if __name__ == "__main__":
    main()
