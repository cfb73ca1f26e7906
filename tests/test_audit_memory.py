"""The audit export streams: ten times more events need no more memory (``bench/audit_export.py``).

This is the suite's slowest test (about 10 s: it inserts 220,000 events and exports them through
the real command twice per format); it stays in the suite, and in CI, on purpose.
"""

from __future__ import annotations

import pytest

from bench.audit_export import run

SMALL, LARGE = 20_000, 200_000
HEADROOM_MB = 20


@pytest.mark.slow
def test_exporting_ten_times_more_events_needs_no_more_memory(tmp_path):
    """Exporting 200,000 events peaks within 20 MB of exporting 20,000, as a table and as JSON."""
    results = {
        (r.events, r.output_format): r for r in run([SMALL, LARGE], ["table", "json"], tmp_path)
    }
    for output_format in ("table", "json"):
        small, large = results[SMALL, output_format], results[LARGE, output_format]
        print(
            f"{output_format}: {small.peak_rss_mb:.1f} MB for {SMALL:,}, {large.peak_rss_mb:.1f} MB for {LARGE:,}"
        )
        assert large.lines >= LARGE
        assert large.peak_rss_mb < small.peak_rss_mb + HEADROOM_MB
