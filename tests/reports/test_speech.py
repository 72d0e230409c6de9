"""Speech in the reports (issue 25): the share of a lecture with speech, its longest stretch and its
long silences; speech per timeline bucket; head-up rate and attention during speech vs silence. A
lecture whose audio was not analysed (no audio track, or records from before speech existed) has
null speech numbers, never zeros. Answers worked out by hand below."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from fer_stream import records, reports
from tests.reports.helpers import D1, D2, D3, A, N, lecture, run

HEARD, DEAF, OLD = "1" * 64, "2" * 64, "3" * 64

# 6 sampled frames at 2 fps (pts 0, 0.5, ..., 2.5 s) of a 10 s lecture (run()'s duration_s), speech
# at [0.5, 1.5) and [7, 9): frames 2 and 3 (pts 0.5, 1.0) are during speech, 1, 4, 5, 6 in silence.
#   frame 1: s1 up 1.0, s2 down 0.0        silence
#   frame 2: s1 up 1.0, s2 up 0.5          speech
#   frame 3: s1 down 0.25, s2 down 0.25    speech
#   frame 4: s1 up 0.75                    silence
FACES = [
    (1, "s1", A, 1.0, "happy", "up"),
    (1, "s2", N, 0.0, "sad", "down"),
    (2, "s1", A, 1.0, "happy", "up"),
    (2, "s2", A, 0.5, "sad", "up"),
    (3, "s1", N, 0.25, "sad", "down"),
    (3, "s2", N, 0.25, "sad", "down"),
    (4, "s1", A, 0.75, "happy", "up"),
]
SPEECH = [(0.5, 1.5), (7.0, 9.0)]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    lecture(root, HEARD, "ML101", D1, 2.0, 6, FACES, speech=SPEECH)
    # no audio track: analysed, speech null
    lecture(root, DEAF, "ML101", D2, 2.0, 6, FACES, write_videos=False)
    run(root, DEAF, "ML101", D2, "done", speech="no_audio")
    # records from before speech was analysed: a videos/ file without the speech columns at all
    lecture(root, OLD, "ML101", D3, 2.0, 6, FACES)
    (path,) = (root / "videos").glob(f"*/*/{OLD}_*.parquet")
    old = pq.read_table(path).drop_columns(["speech", "speech_error", "audio_s"])
    pq.write_table(old, path)
    return reports.connect(root)


def _by_video(table):
    return {r["video_id"]: r for r in table.to_pylist()}


def test_summary_speech_share_longest_stretch_and_long_silences(con):
    rows = _by_video(reports.run_report(con, "lecture_summary", {"silence_s": 5}))
    heard = rows[HEARD]
    assert heard["speech"] == "done"
    assert heard["speech_share"] == pytest.approx(3.0 / 10.0)  # 1 s + 2 s of a 10 s lecture
    assert heard["longest_speech_s"] == pytest.approx(2.0)
    assert heard["long_silences"] == 1  # 1.5 -> 7.0 (5.5 s); 0 -> 0.5 and 9 -> 10 are short
    # a shorter bar counts the pause before the first stretch and after the last too
    short = _by_video(reports.run_report(con, "lecture_summary", {"silence_s": 0.5}))[HEARD]
    assert short["long_silences"] == 3
    for vid, status in ((DEAF, "no_audio"), (OLD, None)):
        row = rows[vid]
        assert row["speech"] == status
        assert row["speech_share"] is None and row["longest_speech_s"] is None
        assert row["long_silences"] is None
        assert row["engagement_index"] is not None  # the lecture itself still reports


def test_timeline_marks_speech_per_bucket(con):
    table = reports.run_report(con, "lecture_timeline", {"bucket_s": 1})
    heard = [r["speech_share"] for r in table.to_pylist() if r["video_id"] == HEARD]
    assert heard == [pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.0)]  # (F,T) (T,F) (F,F)
    assert all(r["speech_share"] is None for r in table.to_pylist() if r["video_id"] != HEARD)


def test_head_up_and_attention_during_speech_vs_silence(con):
    rows = _by_video(reports.run_report(con, "speech_attention", {"course": "ML101"}))
    heard = rows[HEARD]
    assert heard["speech_share"] == pytest.approx(2 / 6)
    assert heard["minutes_speech"] == pytest.approx(2 * 0.5 / 60)
    assert heard["head_up_rate_speech"] == pytest.approx(2 / 4)  # frame 2: 2 of 2 up, frame 3: 0 of 2
    assert heard["head_up_rate_silence"] == pytest.approx(2 / 3)  # frame 1: 1 of 2, frame 4: 1 of 1
    assert heard["head_up_gap"] == pytest.approx(2 / 4 - 2 / 3)
    assert heard["attention_speech"] == pytest.approx((1.0 + 0.5 + 0.25 + 0.25) / 4)
    assert heard["attention_silence"] == pytest.approx((1.0 + 0.0 + 0.75) / 3)
    # a course over time: its lectures in date order, the unheard ones with null numbers
    assert [r["video_id"] for r in reports.run_report(con, "speech_attention", {}).to_pylist()] == [
        HEARD,
        DEAF,
        OLD,
    ]
    for vid in (DEAF, OLD):
        assert rows[vid]["head_up_rate_speech"] is None and rows[vid]["attention_silence"] is None


def test_a_speech_table_row_is_checked_against_the_schema():
    with pytest.raises(records.RecordsError, match="missing"):
        records.make_table("speech", {"video_id": HEARD, "course": "ML101", "lecture_date": D1})
