"""Face descriptors: the on_frame collector and dlib's descriptor network on invalid faces."""

from types import SimpleNamespace

import numpy as np
import pytest

from fer_stream.config import IdentityConfig
from fer_stream.faces import descriptors
from fer_stream.faces.detections import Detections

# --------------------------------------------------------------------------------------------------
# The on_frame collector


class FakeDescribe:
    """Counts calls; returns a descriptor per face encoding its box's x1."""

    def __init__(self):
        self.calls = []

    def __call__(self, rgb, boxes, lm):
        self.calls.append(len(boxes))
        out = np.zeros((len(boxes), 128), np.float32)
        out[:, 0] = np.asarray(boxes)[:, 0]
        return out


def frame(pts, boxes, tids, yaw=None, image=None, nan_lm=()):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    lm = np.tile(boxes[:, None, :2] + 10, (1, 68, 1)).astype(np.float32)
    lm[list(nan_lm)] = np.nan
    ff = SimpleNamespace(
        pts_s=pts,
        det=Detections(boxes, np.ones(n), np.zeros((n, 5, 2))),
        landmarks68=lm,
        yaw=np.zeros(n, np.float32) if yaw is None else np.asarray(yaw, np.float32),
        pitch=np.zeros(n, np.float32),
        track_id=np.asarray(tids, np.int64),
    )
    return ff, image


def textured(h=240, w=320) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_collector_keeps_few_spaced_good_descriptors_per_track_in_one_call_per_frame():
    fake = FakeDescribe()
    cfg = IdentityConfig(max_per_track=3, min_gap_s=1.0)
    col = descriptors.DescriptorCollector(fake, cfg)
    img = textured()
    big, big2 = [10, 10, 70, 80], [150, 10, 210, 80]
    for i in range(40):  # 20 s at 2 fps, two faces per frame
        col(*frame(i * 0.5, [big, big2], [1, 2], image=img))
    got = col.descriptors()
    assert sorted(got) == [1, 2] and all(v.shape == (3, 128) for v in got.values())
    assert got[1][:, 0].tolist() == [10, 10, 10] and got[2][:, 0].tolist() == [150, 150, 150]
    # from the 2nd frame (t = 0.5), then gaps of 1 s and 2 s: t = 0.5, 1.5, 3.5; then nothing more,
    # whatever the length of the lecture
    assert fake.calls == [2, 2, 2] and col.described == 6 and col.frames == 40
    assert col.seconds > 0
    col(*frame(20.0, np.zeros((0, 4)), [], image=img))  # a frame without faces
    assert col.frames == 41


def test_collector_skips_small_turned_blurred_and_unlandmarked_faces():
    fake = FakeDescribe()
    col = descriptors.DescriptorCollector(fake)  # the default IdentityConfig
    assert col.config == IdentityConfig()
    img = textured()
    flat = np.full((240, 320, 3), 128, np.uint8)  # no texture: sharpness 0
    for t in (0.0, 0.5, 1.0, 5.0):  # seen often enough, but never good
        col(*frame(t, [[0, 0, 20, 25]], [1], image=img))  # 20 px wide < 40
        col(*frame(t, [[10, 10, 80, 90]], [2], yaw=[45.0], image=img))  # turned away
        col(*frame(t, [[10, 10, 80, 90]], [3], image=flat))  # blurred
        col(*frame(t, [[10, 10, 80, 90]], [4], image=img, nan_lm=[0]))  # no landmarks
    assert fake.calls == [] and col.descriptors() == {}
    col(*frame(5.0, [[10, 10, 80, 90]], [5], image=img))
    assert col.descriptors() == {}  # a track is described from its second frame on
    col(*frame(5.5, [[10, 10, 80, 90]], [5], image=img))
    assert list(col.descriptors()) == [5]


def test_collector_config_is_validated():
    with pytest.raises(ValueError):
        IdentityConfig(threshold=0)
    with pytest.raises(ValueError):
        IdentityConfig(max_per_track=0)


# --------------------------------------------------------------------------------------------------
# dlib's descriptor network


def test_descriptor_shapes_and_invalid_faces():
    d = descriptors.shared_descriptor()
    img = textured()
    assert d(img, np.zeros((0, 4)), np.zeros((0, 68, 2))).shape == (0, 128)
    lm = np.full((1, 68, 2), np.nan)
    assert np.isnan(d(img, [[10, 10, 80, 90]], lm)).all()
    with pytest.raises(ValueError):
        d(img[..., 0], [[10, 10, 80, 90]], lm)


def test_the_faces_package_never_imports_identity():
    """faces/ is the maths under identity/; an import the other way round would be a cycle."""
    import ast
    from pathlib import Path

    import fer_stream.faces

    upward = []
    for path in sorted(Path(fer_stream.faces.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            upward += [f"{path.name}: {n}" for n in names if n.startswith("fer_stream.identity")]
    assert upward == []
