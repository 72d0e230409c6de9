"""The per-face attention score (issue 23, ``fer_stream.engagement``): shapes, NaN handling, P(up) on
classroom-sized faces, monotonic in P(up), self-describing coefficients in the configuration hash,
the training script's smoke run, and the shipped score on the held-out DAiSEE val frames."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fer_stream import engagement
from fer_stream.config import PipelineConfig, config_hash
from fer_stream.engagement import EPS, FEATURES, EngagementModel, features
from tests.helpers import shared


@pytest.fixture(scope="module")
def model() -> EngagementModel:
    return engagement.load()


def probs(p_up, rest=(0.5, 0.3, 0.2)) -> np.ndarray:
    """``(N, 4)`` head-state rows with the given P(up)s; the rest split in fixed proportions."""
    p_up = np.atleast_1d(np.asarray(p_up, np.float64))
    return np.c_[p_up, np.outer(1 - p_up, rest)].astype(np.float32)


def test_features_shapes_and_order():
    x = features(probs([0.2, 0.7]), [10.0, -30.0], [-15.0, np.nan], [3.0, np.nan])
    assert x.shape == (2, len(FEATURES)) and x.dtype == np.float64
    np.testing.assert_allclose(x[:, 0], np.log([0.2 / 0.8, 0.7 / 0.3]), rtol=1e-6)
    np.testing.assert_allclose(x[0, 3:], [10 / 30, -15 / 30, 3 / 30])
    assert np.isnan(x[1, 4:]).all() and x[1, 3] == 1.0  # |yaw| read, pitch/roll not
    assert features(np.zeros((0, 4)), [], [], []).shape == (0, len(FEATURES))
    with pytest.raises(ValueError, match="differ"):
        features(probs([0.5]), [1.0, 2.0], [1.0], [1.0])


def test_score_shapes_and_nan_handling(model):
    hp = probs([0.3, 0.3, 0.3])
    hp[2] = np.nan  # no head state read
    s = model.score(hp, [np.nan, 5.0, 5.0], [np.nan, 0.0, 0.0], [np.nan, 0.0, 0.0], [90.0, 90.0, 90.0])
    assert s.shape == (3,) and s.dtype == np.float32
    assert np.isfinite(s[:2]).all() and ((s[:2] > 0) & (s[:2] < 1)).all()  # no pose: head state alone
    assert np.isnan(s[2])  # no head state: unmeasured
    assert model.score(np.zeros((0, 4)), [], [], [], []).shape == (0,)
    with pytest.raises(ValueError, match="face_px"):
        model.score(hp, [0.0] * 3, [0.0] * 3, [0.0] * 3, [20.0])


def test_classroom_sized_faces_score_p_up(model):
    p = np.array([0.001, 0.1, 0.5, 0.9, 0.999])
    for px in (12.0, 25.0, model.blend_px[0]):
        s = model.score(probs(p), *np.full((3, 5), 10.0), np.full(5, px))
        np.testing.assert_allclose(s, np.clip(p, EPS, 1 - EPS), rtol=1e-5)


@pytest.mark.parametrize("px", [20.0, 50.0, 90.0])
@pytest.mark.parametrize("pose", [(0.0, -5.0, 2.0), (40.0, 20.0, 15.0), (np.nan, np.nan, np.nan)])
def test_score_rises_with_p_up(model, px, pose):
    p = np.linspace(0.01, 0.99, 50)
    s = model.score(probs(p), *(np.full(50, v) for v in pose), np.full(50, px))
    assert (np.diff(s) > 0).all()


def test_blend_is_continuous_in_face_size(model):
    lo, hi = model.blend_px
    px = np.linspace(lo - 5, hi + 5, 200)
    hp = np.repeat(probs([0.35]), len(px), 0)
    yaw, pitch, roll = (np.full(len(px), v) for v in (20.0, -10.0, 5.0))
    s = model.score(hp, yaw, pitch, roll, px)
    assert np.abs(np.diff(s)).max() < 0.01  # no step
    close = 1 / (1 + np.exp(-model.closeup_logit(features(hp[:1], yaw[:1], pitch[:1], roll[:1]))))
    assert s[px >= hi] == pytest.approx(float(close[0]), abs=1e-6)
    assert s[px <= lo] == pytest.approx(0.35, abs=1e-6)


def test_the_shipped_coefficients_describe_themselves(model):
    raw = json.loads(engagement.shipped_bytes())
    assert raw["features"] == list(FEATURES) and model.version == raw["version"]
    meta = model.meta
    assert "DAiSEE" in meta["training"]["data"] and "research use" in meta["licence"]
    assert meta["training"]["choice"]["inputs"] in ("head", "pose", "head+pose")
    assert "daisee_val_auc_closeup_model" in meta["metrics"]["held_out"]
    assert model.coef[0] > 0  # the score rises with P(up)
    assert EngagementModel.from_dict(model.to_dict()).to_dict() == model.to_dict() == raw


def test_bad_coefficients_are_refused(model):
    d = model.to_dict()
    with pytest.raises(ValueError, match="features"):
        EngagementModel.from_dict(d | {"features": ["logit_up"]})
    with pytest.raises(ValueError, match="logit_up"):
        EngagementModel.from_dict(d | {"coef": [-1.0] + d["coef"][1:]})
    with pytest.raises(ValueError, match="blend_px"):
        EngagementModel.from_dict(d | {"blend_px": [60, 40]})
    with pytest.raises(ValueError, match="finite"):
        EngagementModel.from_dict(d | {"mean": [np.nan] * len(FEATURES)})


def test_the_score_is_in_the_config_hash(monkeypatch):
    cfg = PipelineConfig(signals=frozenset({"attention"}))
    analysis = cfg.analysis(None)
    assert analysis["attention_score"] == engagement.fingerprint()
    assert dataclasses.replace(cfg, head_state=None).analysis(None)["attention_score"] is None
    refitted = {"version": "engagement-v2", "sha256": "0" * 64}
    monkeypatch.setattr(engagement, "fingerprint", lambda: refitted)
    assert config_hash(cfg.analysis(None)) != config_hash(analysis)


@pytest.mark.slow
def test_smoke_training_runs(tmp_path):
    from training import train_engagement

    out = tmp_path / "engagement.json"
    res = train_engagement.main(["--smoke", "--out", str(out)])
    m = EngagementModel.from_dict(json.loads(out.read_text()))
    assert m.version == "engagement-smoke" and m.coef[0] >= train_engagement.UP_FLOOR
    # the synthetic engaged faces turn their heads less: the fit must find it on unseen rows
    assert res["held_out"]["daisee_val_auc_closeup_model"] > 0.6
    assert res["setting"]["inputs"] in ("pose", "head+pose")


# Measured (bench/results/engagement.json, docs/ATTENTION.md "The attention score"): on all 1,429
# DAiSEE val frames through the pipeline's face stage, the shipped score ranks engaged (2-3) against
# not engaged (0-1) with AUC 0.566, bootstrap 95 % interval 0.518-0.613. The floor is that
# interval's lower bound rounded down to 0.51: the test runs the same frames, so another ONNX Runtime,
# dlib or libjpeg build moves the AUC by far less than the interval's half-width (0.048); and it fails
# for P(up) alone (0.483), for a score at chance, or for a score that has lost its pose terms.
FLOOR_DAISEE_VAL_AUC = 0.51


@pytest.mark.slow
def test_shipped_score_on_held_out_daisee_val():
    from training import engagement_data as ED
    from training import evaluate_engagement as EE

    sig = ED.daisee_signals(shared("daisee/val.parquet"))
    assert sig["found"].sum() >= 1420  # CenterFace finds the face of (nearly) every frame
    m = EE.daisee_metrics(sig)
    assert m["not_engaged"] == 166 and m["frames"] == 1429
    assert m["shipped"]["auc_missing_0"] >= FLOOR_DAISEE_VAL_AUC, m["shipped"]
