"""LoggedProgress: silent for short transfers, then rate-limited lines with size, rate and time left."""

from __future__ import annotations

import io
import logging

import pytest

from galaxy_argo.cli.main import ProgressBar
from galaxy_argo.clients.progress import LoggedProgress, human_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_most_once_per_interval_with_rate_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = LoggedProgress("uploading big.bam", 1000 * 10**6, interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="galaxy_argo.clients.progress"):
        progress(100 * 10**6)
        clock.now += 5
        progress(100 * 10**6)
        assert caplog.messages == []  # within the interval: silent
        clock.now += 5
        progress(0)
        clock.now += 1
        progress(100 * 10**6)  # 1 s after a line: silent
        clock.now += 9
        progress(200 * 10**6)
        progress.close()
    assert caplog.messages == [
        "uploading big.bam: 190.73 MiB of 953.67 MiB (20%), 20 MB/s, about 40 s left",
        "uploading big.bam: 476.84 MiB of 953.67 MiB (50%), 25 MB/s, about 20 s left",
        "uploading big.bam: 476.84 MiB in 20 s (25 MB/s)",
    ]


def test_a_short_transfer_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = LoggedProgress("downloading x", 0, interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="galaxy_argo.clients.progress"):
        progress(5)
        clock.now += 2
        progress.close()
    assert caplog.messages == []


def test_unknown_total_shows_size_and_rate_only() -> None:
    clock = Clock()
    progress = LoggedProgress("downloading x", 0, interval=1, clock=clock)
    progress(3 * 1024**2)
    assert progress.line(clock.now + 3) == "downloading x: 3.00 MiB, 1 MB/s"


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536 * 1024**2, 5 * 1024**5)] == [
        "0 B",
        "1023 B",
        "1.00 KiB",
        "1.50 GiB",
        "5120.00 TiB",
    ]


def test_the_cli_bar_counts_bytes() -> None:
    out = io.StringIO()
    bar = ProgressBar("uploading ref.fa", 2048, file=out)
    bar(1024)
    bar(1024)
    assert bar.bar.n == 2048
    bar.close()
    assert "uploading ref.fa" in out.getvalue()
