import json

import numpy as np
import pytest
import torch

from fer_stream.labels import CKPLUS_LABELS
from tests.helpers import shared
from training import ckplus_cv, table1, train


def _smoke(tmp_path, *extra):
    docs = tmp_path / "RESULTS.md"
    if not docs.exists():
        docs.write_text(f"# Results\n\nabove\n\n{table1.BEGIN}\nold table\n{table1.END}\n\nbelow\n")
    argv = ["--smoke", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "t1.jsonl")]
    return table1.main(argv + ["--docs", str(docs), "--threads", "1", *extra]), docs


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_smoke_runs_every_model_and_init_then_resumes_without_redoing(tmp_path):
    s, docs = _smoke(tmp_path, "--only-folds", "1")
    lines = _lines(tmp_path / "t1.jsonl")
    folds = [r for r in lines if r["kind"] == "fold"]
    # smoke (scratch + a FER2013 stand-in) and inception-v4-smoke (scratch: no FER2013 model)
    assert sorted((r["model"], r["init"]) for r in folds) == [
        ("inception-v4-smoke", "scratch"),
        ("smoke", "fer2013"),
        ("smoke", "scratch"),
    ]
    assert {r["model"] for r in lines if r["kind"] == "speed"} == {"smoke", "inception-v4-smoke"}
    for r in folds:
        assert np.array(r["confusion"]).sum() == r["n_test"] > 0
        assert r["n_train"] + r["n_val"] + r["n_test"] == 56
    # epoch checkpoints removed when a fold is done (the empty .claim lock files stay)
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_dir() and "-fold" in p.name]
    assert not list((tmp_path / "work").rglob("last.pt"))

    # A second run with more folds does only the new ones: one more line per (model, init).
    s2, _ = _smoke(tmp_path, "--only-folds", "2")
    lines2 = _lines(tmp_path / "t1.jsonl")
    assert lines2[: len(lines)] == lines
    assert len([r for r in lines2 if r["kind"] == "fold"]) == 6
    assert len([r for r in lines2 if r["kind"] == "speed"]) == 2  # measured once per model
    assert {r["folds_done"] for r in s2["rows"]} == {2} and s2["protocol_id"] == s["protocol_id"]
    # And a third changes nothing.
    _smoke(tmp_path, "--only-folds", "2")
    assert _lines(tmp_path / "t1.jsonl") == lines2

    text = docs.read_text()
    assert text.startswith("# Results\n\nabove\n\n") and text.endswith("\n\nbelow\n")
    assert "old table" not in text and text.count(table1.BEGIN) == 1
    assert "| `smoke` | scratch | 2/4 (partial) |" in text
    assert "| `inception-v4-smoke` | scratch | 2/4 (partial) |" in text
    assert "95.1 %" in text  # the paper's reported number stays beside ours


@pytest.mark.slow
def test_budget_stops_between_folds_and_the_order_option(tmp_path):
    s, _ = _smoke(tmp_path, "--budget-s", "0.001", "--order", "fold")
    assert s["stopped"] and s["rows"] == []  # the budget was spent before the first fold
    s, _ = _smoke(tmp_path, "--order", "fold", "--models", "smoke", "--inits", "scratch")
    folds = [r["fold"] for r in _lines(tmp_path / "t1.jsonl") if r["kind"] == "fold"]
    assert folds == [0, 1] and s["stopped"] is None


@pytest.mark.slow
def test_a_fold_another_worker_holds_is_left_to_it(tmp_path):
    # Worker A holds fold 0's claim; worker B (the same command) does fold 1 only and says so.
    one = ["--models", "smoke", "--inits", "scratch", "--only-folds", "2", "--speed-seconds", "0"]
    s, _ = _smoke(tmp_path, *one, "--table-only")  # just the protocol id
    claim_path = tmp_path / "work" / s["protocol_id"] / "smoke-scratch-fold0.claim"
    with table1.claim(claim_path) as mine:
        assert mine
        with table1.claim(claim_path) as again:  # a second open file description is refused too
            assert not again
        s, _ = _smoke(tmp_path, *one)
    assert s["busy"] == ["smoke-scratch-fold0"]
    assert [r["fold"] for r in _lines(tmp_path / "t1.jsonl")] == [1]
    # A finished claim is free again: the next run does fold 0, and nothing twice.
    s, _ = _smoke(tmp_path, *one)
    assert s["busy"] == [] and sorted(r["fold"] for r in _lines(tmp_path / "t1.jsonl")) == [0, 1]


def test_a_killed_fold_continues_from_its_last_epoch(tmp_path, capsys):
    # The epoch checkpoint of a fold in progress (as a kill leaves it) is resumed, then removed.
    ds = table1.synthetic_ckplus()
    y = np.array([CKPLUS_LABELS.index(x) for x in ds.labels])
    folds = ckplus_cv.folds_of(ds.subjects, 4, 0)
    hp = train.Hyper(epochs=2, batch_size=8, patience=5, warmup_epochs=0.5)
    work = tmp_path / "work"
    fold_dir = work / "smoke-scratch-fold0"
    fold_dir.mkdir(parents=True)
    tr = ~np.isin(folds, [0, 1])
    x = train.to_tensor(ds.images, 0.45, 0.2)
    torch.manual_seed(0)
    one_epoch = train.Hyper(**{**hp.__dict__, "epochs": 1})
    model = table1.new_model("smoke", None, hp.seed)
    train.fit(model, x[tr], y[tr], x[folds == 1], y[folds == 1], one_epoch, "cpu", out=fold_dir, quiet=True)
    assert (fold_dir / "last.pt").is_file()
    first = torch.load(fold_dir / "last.pt", weights_only=False)["hist"]["epochs"][0]["seconds"]
    res = table1.run_fold("smoke", "scratch", None, ds.images, y, folds, 0, hp, "cpu", work, True)
    assert "resumed from" in capsys.readouterr().err
    assert res["epochs_run"] == 2 and not fold_dir.exists()
    # the fold's training time counts the epoch from before the kill too
    assert res["train_seconds"] > first > 0


def test_summary_is_mean_std_pooled_and_recall():
    def rec(fold, conf, model="m", pid="p"):
        conf = np.array(conf)
        return {
            "kind": "fold",
            "model": model,
            "init": "scratch",
            "fold": fold,
            "protocol_id": pid,
            "accuracy": float(np.trace(conf) / conf.sum()),
            "confusion": conf.tolist(),
            "params": 10,
            "macs": 20,
        }

    k = len(CKPLUS_LABELS)
    a = np.zeros((k, k), int)
    a[0, 0], a[1, 1] = 3, 1  # fold 0: 4 of 4 right
    b = np.zeros((k, k), int)
    b[0, 0], b[0, 2], b[1, 1], b[2, 2] = 1, 3, 1, 1  # fold 1: 3 of 6 right
    records = [rec(0, a), rec(1, b), rec(1, b), rec(0, a, pid="other")]  # a duplicate, another protocol
    records.append({"kind": "speed", "model": "m", "faces_per_s": 12.5, "threads": 2})
    (row,) = table1.summarise(records, "p", 10)
    assert row["folds_done"] == 2 and row["folds"] == 10
    assert row["precision"] == {"fp32": 2}  # lines from before the field: CPU float32
    assert row["mean"] == pytest.approx(0.75) and row["std"] == pytest.approx(0.25)
    assert row["pooled"] == pytest.approx(7 / 10)
    assert row["recall"]["angry"] == pytest.approx(4 / 7) and row["recall"]["contempt"] == 1.0
    assert row["recall"]["happy"] is None  # no test image of that class yet
    assert row["faces_per_s"] == 12.5
    md = table1.markdown([row], {"labels": list(CKPLUS_LABELS), **_proto()}, "p", "r.jsonl")
    assert "| `m` | scratch | 2/10 (partial) | **75.0 ± 25.0 %** | 70.0 % | 57.1 | 100.0 |" in md
    assert row["per_fold"] == {0: 1.0, 1: 0.5}
    assert "| `m` | scratch | 100.0 | 50.0 |" + "  |" * 8 in md  # folds 2-9 not done: empty cells


def test_paired_comparison_is_on_shared_folds_with_an_exact_sign_flip_p():
    def row(model, per_fold, init="scratch"):
        return {"model": model, "init": init, "per_fold": per_fold}

    ref = row("paper", {0: 0.8, 1: 0.9, 2: 0.7, 3: 0.6})
    other = row("xception", {0: 0.9, 1: 0.9, 2: 0.8, 4: 0.5})  # fold 3 not done, fold 4 not in ref
    (c,) = table1.paired([other, ref])
    assert c["model"] == "xception" and c["folds"] == [0, 1, 2]
    assert c["diff"] == pytest.approx(0.2 / 3)
    assert (c["better"], c["equal"], c["worse"]) == (2, 1, 0)
    # sign flips of (+0.1, 0, +0.1): |mean| is as large only with both signs alike: 4 of 8
    assert c["p"] == pytest.approx(0.5)
    worse = row("lite", {f: v - 0.05 for f, v in ref["per_fold"].items()})
    (w,) = table1.paired([ref, worse])
    assert w["worse"] == 4 and w["diff"] == pytest.approx(-0.05)
    assert w["p"] == pytest.approx(2 / 16)  # all four the same sign, either way
    assert table1.paired([other]) == []  # no reference row: nothing to pair
    hp = _proto()
    for r in (ref, other):
        r.update(folds=10, folds_done=len(r["per_fold"]), mean=0.8, std=0.1, pooled=0.8, params=1, macs=1)
        r.update(recall=dict.fromkeys(CKPLUS_LABELS, 0.5), precision={"fp32": 1}, faces_per_s=None)
    md = table1.markdown([ref, other], {"labels": list(CKPLUS_LABELS), **hp}, "p", "r.jsonl")
    assert "| `xception` | scratch | 3 | +6.7 | 2 / 1 / 0 | 0.50 |" in md


def _proto():
    hp = train.Hyper(epochs=40, batch_size=32, patience=10)
    return {"n_images": 837, "folds": 10, "fold_seed": 0, "hyper": {"scratch": hp.__dict__}}


def test_results_file_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    table1.append_result(path, {"kind": "speed", "model": "a"})
    with open(path, "a") as f:
        f.write('{"kind": "fold", "mod')  # a kill in the middle of a write
    assert table1.read_results(path) == [{"kind": "speed", "model": "a"}]
    assert table1.read_results(tmp_path / "missing.jsonl") == []


def test_markers_are_added_when_missing(tmp_path):
    path = tmp_path / "new.md"
    table1.write_between_markers(path, "one")
    table1.write_between_markers(path, "two")
    assert path.read_text() == f"{table1.BEGIN}\ntwo\n{table1.END}\n"


def test_real_ckplus_folds_are_ckplus_cvs_and_subject_independent():
    ds, y = ckplus_cv.load_ckplus(shared("ckplus/ckplus48.parquet"))
    assert len(y) == 837 and set(y) == set(range(7))  # CK+'s seven labels, no neutral
    folds = ckplus_cv.folds_of(ds.subjects, 10, 0)
    from training import data as D

    np.testing.assert_array_equal(folds, D.subject_folds(ds.subjects, 10, 0))
    subjects = ds.subjects.astype(str)
    for f in range(10):
        test, val = set(subjects[folds == f]), set(subjects[folds == (f + 1) % 10])
        rest = set(subjects[(folds != f) & (folds != (f + 1) % 10)])
        assert not (test & val) and not (test & rest) and not (val & rest)


def test_speed_only_measures_again_trains_nothing_and_the_table_uses_the_latest(tmp_path):
    for _ in range(2):
        s, docs = _smoke(tmp_path, "--speed-only", "--models", "smoke", "--speed-seconds", "0.1")
    lines = _lines(tmp_path / "t1.jsonl")
    assert [r["kind"] for r in lines] == ["speed", "speed"] and s["rows"] == []
    assert all(r["faces_per_s"] > 0 and "load_1min" in r for r in lines)
    records = lines + [
        {"kind": "fold", "model": "smoke", "init": "scratch", "fold": 0, "protocol_id": "p", "accuracy": 1.0}
        | {"confusion": np.eye(len(CKPLUS_LABELS), dtype=int).tolist(), "params": 1, "macs": 1}
    ]
    (row,) = table1.summarise(records, "p", 4)
    assert row["faces_per_s"] == lines[-1]["faces_per_s"]


def test_precision_is_recorded_and_a_mixed_row_says_so(tmp_path):
    one = ["--models", "smoke", "--inits", "scratch", "--speed-seconds", "0"]
    _smoke(tmp_path, *one, "--only-folds", "1")
    s, docs = _smoke(tmp_path, *one, "--only-folds", "2", "--precision", "bf16")
    assert [r["precision"] for r in _lines(tmp_path / "t1.jsonl")] == ["fp32", "bf16-amp"]
    (row,) = s["rows"]
    assert row["precision"] == {"bf16-amp": 1, "fp32": 1}
    assert "| bf16-amp x1, fp32 x1 |" in docs.read_text()
    assert table1.precision_of("cuda:0", "fp32") == "fp16-amp"


def test_fit_with_cpu_bf16_runs_its_steps_under_bfloat16_autocast():
    ds = table1.synthetic_ckplus()
    y = np.array([CKPLUS_LABELS.index(x) for x in ds.labels])
    x = train.to_tensor(ds.images, 0.45, 0.2)
    seen = []
    for bf16 in (False, True):
        model = table1.new_model("smoke", None, 0)
        hook = model.register_forward_hook(
            lambda m, i, o, b=bf16: seen.append((b, torch.is_autocast_enabled("cpu")))
        )
        hp = train.Hyper(epochs=1, batch_size=8, patience=5, warmup_epochs=0.5)
        hist = train.fit(model, x, y, x[:8], y[:8], hp, "cpu", quiet=True, cpu_bf16=bf16)
        hook.remove()
        assert np.isfinite(hist["epochs"][0]["train_loss"])
        assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32
    train_calls = {bf16: {on for b, on in seen if b == bf16} for bf16 in (False, True)}
    assert train_calls[False] == {False}  # float32 steps, float32 validation
    assert train_calls[True] == {True, False}  # bf16 steps, float32 validation


def test_image_split_is_its_own_protocol_and_leaks_subjects(tmp_path):
    ds = table1.synthetic_ckplus()
    folds = table1.image_folds(len(ds.labels), 4, 0)
    assert sorted(np.bincount(folds)) == [14, 14, 14, 14]  # dealt evenly
    subjects = ds.subjects.astype(str)
    # some subject has images in more than one fold: the leak the subject split prevents
    assert any(len(set(folds[subjects == s])) > 1 for s in set(subjects))
    one = ["--models", "smoke", "--inits", "scratch", "--speed-seconds", "0", "--only-folds", "1"]
    s_subject, _ = _smoke(tmp_path, *one, "--table-only")
    s_image, docs = _smoke(tmp_path, *one, "--split", "image")
    assert s_image["protocol_id"] != s_subject["protocol_id"]
    assert "RANDOM-IMAGE (not subject-independent)" in docs.read_text()
