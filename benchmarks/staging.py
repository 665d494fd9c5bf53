"""Staging throughput against raw s3transfer, on the embedded SeaweedFS, in one process.

Prints `name: value` lines (issue #5): staging_in_ratio and staging_out_ratio (ours / raw boto3
upload_file / download_file of the same file with the same TransferConfig; target >= 0.95), the
MB/s of each and of a plain disk copy (the physical limit here), and restage_requests /
restage_ratio for an input already in S3 (target <= 2 requests, < 1% of a full upload), and the
sha256 speed and CPU count that bound both ratios (a new input is hashed before its content
address is known; a download is hashed while it arrives, which is free only if a CPU is).
Medians of ROUNDS runs; our stage-in hashes the file every round (a new dataset is hashed once).

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

from galaxy_argo.clients.staging import DEFAULT_TRANSFER, Download, Sha256Cache, Stager  # noqa: E402
from galaxy_argo.local.s3 import SeaweedS3  # noqa: E402

SIZE_MIB = int(os.environ.get("BENCH_SIZE_MIB", "1024"))
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
            block = os.urandom(8 * 1024 * 1024)
            for _ in range(SIZE_MIB // 8):
                handle.write(block)
        mb = data.stat().st_size / 1e6
        with SeaweedS3(root / "state", access_key="benchkey", secret_key="benchsecret-0123456789") as s3:
            client = s3.client()
            stager = Stager(client, s3.bucket, "bench")
            raw_up, ours_up, raw_down, ours_down, copies = [], [], [], [], []
            stager.stage_file(data, "warm-up")
            for i in range(ROUNDS):
                raw_key, ours_key = f"raw/{i}", f"ours/{i}"

                def raw_in(key: str = raw_key) -> None:
                    client.upload_file(str(data), s3.bucket, key, Config=DEFAULT_TRANSFER)

                def ours_in(key: str = ours_key) -> None:
                    stager.hashes = Sha256Cache()  # a new dataset is hashed: count it
                    stager.stage_file(data, key)

                def raw_out(key: str = raw_key) -> None:
                    client.download_file(s3.bucket, key, str(root / "raw.out"), Config=DEFAULT_TRANSFER)

                def ours_out(key: str = ours_key) -> None:
                    upload = stager.stage_file(data, key)  # found, not sent: one HEAD
                    stager.fetch(Download(upload.key, root / "ours.out", upload.size, upload.sha256))

                # Alternate who goes first: the server's state after one transfer biases the next.
                pairs = [((raw_in, raw_up), (ours_in, ours_up)), ((raw_out, raw_down), (ours_out, ours_down))]
                for pair in pairs:
                    for action, results in pair if i % 2 == 0 else pair[::-1]:
                        results.append(timed(action))
                copies.append(timed(lambda: shutil.copyfile(data, root / "copy.out")))
                for name in ("raw.out", "ours.out", "copy.out"):
                    (root / name).unlink()
            calls: list[str] = []
            client.meta.events.register("before-send.s3.*", lambda request, **_: calls.append(request.method))
            restage = [timed(lambda: stager.stage_file(data, "ours/0")) for _ in range(ROUNDS)]
            requests_per_restage = len(calls) / ROUNDS
        up_raw, up_ours = statistics.median(raw_up), statistics.median(ours_up)
        down_raw, down_ours = statistics.median(raw_down), statistics.median(ours_down)
        print(f"staging_size_mib: {SIZE_MIB}")
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
