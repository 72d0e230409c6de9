"""``lecture.run_segment`` and ``lecture.assemble``: the one path from a segment to rows (no Ray).

The classify callback here is a thread pool whose calls finish out of order, so the runner's
batching, backpressure and crop order are tested as the Ray actor pool would exercise them.
"""

from __future__ import annotations

import concurrent.futures as cf
import random
import threading
import time
from datetime import date

import numpy as np
import pytest

from fer_stream import records
from fer_stream.config import ModelInfo, PipelineConfig
from fer_stream.demo import make_demo_clip
from fer_stream.labels import FER2013_LABELS
from fer_stream.lecture import (
    SEGMENT_ID_STRIDE,
    assemble,
    in_process,
    label_order,
    make_face_stage,
    run_segment,
)


class SlowPool:
    """A classify callback: each call completes after a random delay on one of 4 threads. Its
    probabilities encode each crop's position in the stream of crops sent (column 0 = index / 1e4)."""

    def __init__(self):
        self.pool = cf.ThreadPoolExecutor(4)
        self.lock = threading.Lock()
        self.sent = 0
        self.running = 0
        self.max_running = 0
        self.batches: list[int] = []
        self.rng = random.Random(0)

    def __call__(self, crops: np.ndarray) -> cf.Future:
        assert crops.dtype == np.uint8 and crops.ndim == 3
        first, delay = self.sent, self.rng.uniform(0.0, 0.03)
        self.sent += len(crops)
        self.batches.append(len(crops))
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)

        def work():
            time.sleep(delay)  # later calls may finish first
            p = np.full((len(crops), 7), 0.0, np.float32)
            p[:, 0] = (first + np.arange(len(crops))) / 1e4
            p[:, 1] = 1 - p[:, 0]
            with self.lock:
                self.running -= 1
            return p, delay

        return self.pool.submit(work)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_demo_clip(tmp_path_factory.mktemp("seg") / "2024-03-05_demo.mp4", seconds=3.0, fps=10)


@pytest.fixture(scope="module")
def stage():
    return make_face_stage(PipelineConfig(), crop_size=48)


def test_batches_backpressure_and_crop_order_under_out_of_order_completion(clip, stage):
    config = PipelineConfig(sample_fps=5.0, batch_size=8, batches_in_flight=2)
    pool = SlowPool()
    part = run_segment(clip, config, stage, pool, k=2)
    n = len(part.faces["track_id"])
    assert n > 3 * config.batch_size  # enough crops for several batches
    assert pool.sent == n and sum(pool.batches) == n
    assert (
        all(b == config.batch_size for b in pool.batches[:-1]) and 0 < pool.batches[-1] <= config.batch_size
    )
    # never more calls outstanding than batches_in_flight, whatever order they finish in
    assert 1 <= pool.max_running <= config.batches_in_flight
    # probabilities come back in crop order: row i is the i-th crop sent
    np.testing.assert_allclose(part.faces["probs"][:, 0], np.arange(n) / 1e4, atol=1e-6)
    assert part.classify_s > 0 and part.analyze_s > 0
    # the segment's tracks are numbered from k * stride + 1, and every sampled frame is a row
    tracked = part.faces["track_id"][part.faces["track_id"] > 0]
    assert tracked.min() > 2 * SEGMENT_ID_STRIDE and tracked.max() < 3 * SEGMENT_ID_STRIDE
    assert len(part.frames["frame_index"]) == pytest.approx(3.0 * config.sample_fps, abs=1)
    assert part.frames["n_faces"].sum() == n


def test_a_failed_classifier_call_fails_the_segment(clip, stage):
    class Broken:
        def predict(self, crops):
            raise RuntimeError("classifier went away")

    with pytest.raises(RuntimeError, match="went away"):
        run_segment(clip, PipelineConfig(sample_fps=2.0, batch_size=4), stage, in_process(Broken()))


def test_assemble_reorders_labels_and_keys_students_once(clip, stage):
    """The weights' label order becomes FER2013's; every face on a student track gets its id."""
    model = ModelInfo.load("default")
    shuffled = ModelInfo(
        blob=model.blob,
        version=model.version,
        labels=tuple(reversed(model.labels)),
        input_size=model.input_size,
        sha256=model.sha256,
    )
    config = PipelineConfig(sample_fps=5.0)

    class Tagged:  # column j of the output is "label j" of the weights: one-hot on column 0
        def predict(self, crops):
            p = np.zeros((len(crops), 7), np.float32)
            p[:, 0] = 1
            return p

    part = run_segment(clip, config, stage, in_process(Tagged()))
    lec = assemble(
        [part],
        video_id="ab" * 32,
        course="ML101",
        lecture_date=date(2024, 3, 5),
        model=shuffled,
        config=config,
    )
    assert lec.faces.schema.equals(records.FACES_SCHEMA) and lec.frames.schema.equals(records.FRAMES_SCHEMA)
    first = shuffled.labels[0]  # the weights' column 0 is this label
    assert set(lec.faces.column(f"p_{first}").to_pylist()) == {1.0}
    assert np.array_equal(label_order(shuffled), [shuffled.labels.index(x) for x in FER2013_LABELS])
    ids = {s for s in lec.faces.column("student_id").to_pylist() if s is not None}
    assert len(ids) == lec.students > 1 and all(s.startswith("abababab-s") for s in ids)


def test_a_video_without_faces_assembles_to_empty_typed_tables(tmp_path, stage):
    import av

    path = tmp_path / "blank.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="rgb24")
            for packet in s.encode(frame):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    config = PipelineConfig(sample_fps=5.0)
    part = run_segment(path, config, stage, in_process(None))  # never called: no crops
    assert part.faces["probs"].shape == (0, 7)
    lec = assemble(
        [part],
        video_id="cd" * 32,
        course="c",
        lecture_date=date(2024, 3, 5),
        model=ModelInfo.load("default"),
        config=config,
    )
    assert lec.faces.num_rows == 0 and lec.frames.num_rows >= 4 and lec.students == 0


def test_decode_damage_reaches_the_segment_result(tmp_path, stage):
    # The one path both runners share (in-process analysis and the Ray tasks) carries the counts.
    from tests.test_video import damage_bitstream, encode

    config = PipelineConfig(sample_fps=2.0)
    intact = run_segment(encode(tmp_path / "intact.mkv", n=150, gop=25), config, stage, in_process(None))
    assert not intact.damage.incomplete and intact.damage.missing_frames == 0
    damaged = damage_bitstream(encode(tmp_path / "damaged.mkv", n=150, gop=25))
    part = run_segment(damaged, config, stage, in_process(None))
    assert part.damage.incomplete and part.damage.missing_frames > 0 and part.damage.damaged_frames > 0
