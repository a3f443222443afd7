"""Your own data: `adcore fit` / `adcore score` on a folder of PNGs and on a CSV, exact reload, the bad inputs
(one line, exit status 2, nothing written), and adcore.Detector's scikit-learn conventions."""
import csv
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone

import adcore.__main__ as cli
from adcore import Detector, owndata
from adcore.config import ConfigError
from adcore.detector import FORMAT_VERSION, ModelFileError
from conftest import bars


def _png_folder(folder, x):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x.numpy()):
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(folder / f"{i:04d}.png")


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """train/normal: 240 horizontal bars; test/normal: 60 more, test/anomalous: 60 vertical bars (28 px grey)."""
    root = tmp_path_factory.mktemp("pngs")
    _png_folder(root / "train" / "normal", bars(240, False, 1))
    _png_folder(root / "test" / "normal", bars(60, False, 2))
    _png_folder(root / "test" / "anomalous", bars(60, True, 3))
    return root


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    cols = ["a", "b", "c", "d"]
    header = ",".join(cols)
    np.savetxt(root / "train.csv", rng.normal(size=(300, 4)), delimiter=",", header=header, comments="")
    test = np.c_[np.r_[rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 4], np.r_[np.zeros(50), np.ones(50)]]
    np.savetxt(root / "test.csv", test, delimiter=",", header=header + ",label", comments="", fmt="%.6g")
    return root


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("adcore: error: "), err
    return err


def test_fit_and_score_a_png_folder_reload_gives_the_same_scores(pngs, tmp_path, capsys):
    model, fit_csv, score_csv = tmp_path / "m.adcore", tmp_path / "fit.csv", tmp_path / "score.csv"
    argv = ["fit", "--data", str(pngs / "train"), "--test", str(pngs / "test"), "--objective", "hsc", "--epochs",
            "2", "--oe-size", "256", "--out", str(model), "--csv", str(fit_csv), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "240 images (grey -> 1 x 28 x 28, mnist_lenet)" in out and "216 train, 24 held out" in out
    assert re.search(r"120 labelled inputs: AUROC \d+\.\d\d", out)
    assert cli.main(["score", str(model), str(pngs / "test"), "--csv", str(score_csv), "--quiet"]) == 0
    fit_rows, score_rows = _rows(fit_csv), _rows(score_csv)
    assert [r["file"] for r in fit_rows] == [r["file"] for r in score_rows] and len(score_rows) == 120
    assert [r["score"] for r in fit_rows] == [r["score"] for r in score_rows]  # the fit run's scores, exactly
    det = Detector.load(model)
    s = det.score_samples(str(pngs / "test"))
    assert [float(r["score"]) for r in score_rows] == s.tolist()
    assert [int(r["is_anomaly"]) for r in score_rows] == (s > det.threshold_).astype(int).tolist()
    assert [int(r["label"]) for r in score_rows] == [0] * 60 + [1] * 60
    # the held-out normals the threshold came from score as they did in the fit
    cal = det.calibration_
    again = det.score_samples([str(pngs / "train" / "normal" / f) for f in
                               [i.split("/")[-1] for i in cal["ids"]]])
    assert again.tolist() == cal["scores"]
    assert np.mean(np.array(cal["scores"]) > det.threshold_) <= 0.05
    assert det.fit_["versions"].startswith("adcore ") and det.fit_["threads"] >= 1 and "device" in det.fit_


def test_fit_and_score_a_csv(tables, tmp_path, capsys):
    model = tmp_path / "t.adcore"
    assert cli.main(["fit", "--data", str(tables / "train.csv"), "--test", str(tables / "test.csv"), "--objective",
                     "deepsvdd", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    assert "300 rows of 4 columns" in capsys.readouterr().out
    assert cli.main(["score", str(model), str(tables / "test.csv"), "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "scored 100 inputs" in out and "AUROC" in out
    rows = _rows(tmp_path / "s.csv")
    assert rows[0]["file"] == "test.csv:2" and len(rows) == 100
    det = Detector.load(model)
    assert [float(r["score"]) for r in rows] == det.score_samples(str(tables / "test.csv")).tolist()
    assert det.evaluate(str(tables / "test.csv"))["auc"] > 0.9  # shifted by 4 std: easy


def _write_bad(tmp_path):
    (tmp_path / "empty" / "normal").mkdir(parents=True)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (28, 28)).save(mixed / "a.png")
    Image.new("L", (40, 30)).save(mixed / "b.png")
    (tmp_path / "bad_label.csv").write_text("file,label\nnormal/0000.png,2\n")
    (tmp_path / "missing.csv").write_text("file,label\nnormal/nope.png,1\n")
    (tmp_path / "nan.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    (tmp_path / "text.csv").write_text("a,b\n1,red\n3,4\n")


BAD_FIT = [
    ("empty folder", ["--data", "{t}/empty"], r"'.*empty/normal' holds no image files"),
    ("mixed sizes", ["--data", "{t}/mixed"], r"mixed sizes .*pass --image-size N"),
    ("label value", ["--data", "{p}/train", "--test", "{p}/test", "--test-labels", "{t}/bad_label.csv"],
     r"bad_label.csv', line 2: label '2' must be 0 \(normal\) or 1"),
    ("label file names a missing image", ["--data", "{p}/train", "--test", "{p}/test", "--test-labels",
                                          "{t}/missing.csv"], r"missing.csv', line 2: no such image"),
    ("NaN cell", ["--data", "{t}/nan.csv"], r"nan.csv', line 3, column 'b': empty or NaN cell"),
    ("non-numeric column", ["--data", "{t}/text.csv"], r"column 'b' is not numeric \(line 2: 'red'\)"),
    ("no such data", ["--data", "{t}/nothing"], r"'.*nothing': no such file or folder"),
    ("bad fpr", ["--data", "{t}/nan.csv", "--fpr", "1"], r"fpr=1.0 must be in \(0, 1\)"),
    ("test table without labels", ["--data", "{l}/train.csv", "--test", "{l}/train.csv"], r"has no labels"),
]


@pytest.mark.parametrize("case,argv,message", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_fit_bad_inputs_one_line_exit_2_nothing_written(case, argv, message, pngs, tables, tmp_path, capsys):
    _write_bad(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    fmt = {"t": tmp_path, "p": pngs, "l": tables}
    argv = [a.format(**fmt) for a in argv]
    assert cli.main(["fit", *argv, "--epochs", "1", "--out", str(tmp_path / "m.adcore"), "--quiet"]) == 2, case
    assert re.search(message, _err(capsys)), case
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no model, no temporary file


@pytest.fixture(scope="module")
def small_model(tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.adcore"
    Detector("hsc", epochs=1).fit(str(tables / "train.csv")).save(path)
    return path


def test_model_file_errors(small_model, tables, tmp_path, capsys):
    trunc = tmp_path / "trunc.adcore"
    trunc.write_bytes(small_model.read_bytes()[:2000])
    other = tmp_path / "v99.adcore"
    d = torch.load(small_model, weights_only=True)
    torch.save({**d, "format_version": FORMAT_VERSION + 98, "adcore": "9.9"}, other)
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, foreign)
    cases = [(trunc, "is truncated or not an adcore model file"), (other, "has format version 99 (written by adcore "
              "9.9)"), (foreign, "is not an adcore model file"), (tmp_path / "none.adcore", "no such file")]
    for path, message in cases:
        out = tmp_path / "scores.csv"
        assert cli.main(["score", str(path), str(tables / "test.csv"), "--csv", str(out)]) == 2
        err = _err(capsys)
        assert str(path) in err and message in err, err
        assert not out.exists()
        with pytest.raises(ModelFileError, match=re.escape(message)):
            Detector.load(path)
    # scoring inputs of the wrong kind, or a NaN row, writes nothing either
    (tmp_path / "nan.csv").write_text("a,b,c,d\n1,2,3,4\n1,,3,4\n")
    for inputs, message in (([str(tmp_path / "nan.csv")], "line 3, column 'b': empty or NaN"),
                            ([str(tmp_path)], "is not a table file")):
        assert cli.main(["score", str(small_model), *inputs, "--csv", str(tmp_path / "s.csv")]) == 2
        assert message in _err(capsys) and not (tmp_path / "s.csv").exists()


def test_detector_follows_sklearn_conventions(toy):
    det = Detector("bce", epochs=2, oe_size=128, fpr=0.1)
    params = det.get_params()
    assert params["objective"] == "bce" and params["epochs"] == 2 and params["fpr"] == 0.1
    assert clone(det).get_params() == params
    assert det.set_params(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="unknown objective 'svm'"):
        Detector("svm")
    with pytest.raises(ConfigError, match="epochs=0 must be >= 1"):
        Detector(epochs=0)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        det.predict(toy["test_x"])
    det.fit(toy["train"].numpy())
    s = det.score_samples(toy["test_x"].numpy())
    assert s.shape == (200,) and det.predict(toy["test_x"]).tolist() == (s > det.threshold_).astype(int).tolist()
    assert np.allclose(det.decision_function(toy["test_x"]), s - det.threshold_)
    auc = det.evaluate(toy["test_x"], toy["test_y"].numpy())["auc"]
    assert auc > 0.8  # higher = more anomalous: vertical bars score above horizontal ones


def test_labelled_anomalies_for_deep_sad_and_ssad(tables):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    anomalies = rng.normal(size=(20, 4)) + 4
    test = np.r_[rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 4]
    y = np.r_[np.zeros(50), np.ones(50)]
    for objective in ("deepsad_semi", "ssad"):
        det = Detector(objective, epochs=5).fit(x, anomalies=anomalies)
        assert det.fit_["n_anomalies"] == 20 and det.evaluate(test, y)["auc"] > 0.9, objective
    # y = 1 rows of the training data are labelled anomalies too
    det = Detector("ssad").fit(np.r_[x, anomalies], np.r_[np.zeros(200), np.ones(20)])
    assert det.fit_["n_anomalies"] == 20 and det.fit_["n_train"] + det.fit_["n_holdout"] == 200
    with pytest.raises(ConfigError, match="'ssad' needs labelled anomalies"):
        Detector("ssad").fit(x)


def test_input_kinds(tmp_path):
    # grey vs RGB detection and the net picked from the size
    _png_folder(tmp_path / "rgb", torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8))
    _png_folder(tmp_path / "big", torch.randint(0, 255, (3, 1, 80, 80), dtype=torch.uint8))
    info = owndata.probe(owndata.training_files(tmp_path / "rgb"))
    assert not info.grey and info.size == (32, 32)
    assert owndata.net_for_images(info.grey, 32) == "cifar10_lenet"
    assert owndata.probe(owndata.training_files(tmp_path / "big")).grey
    assert owndata.net_for_images(True, 80) == "resnet18_cbam" and owndata.net_for_images(True, 64) == "mnist_lenet"
    # images resized to the network's input
    x = owndata.decode_all(owndata.training_files(tmp_path / "big"), 1, 28)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.uint8
    # .npz with labels, .npy with a label file
    np.savez(tmp_path / "t.npz", X=np.arange(12.0).reshape(6, 2), y=np.array([0, 0, 0, 1, 0, 1]))
    t = owndata.read_table(tmp_path / "t.npz")
    assert t.x.shape == (6, 2) and t.y.tolist() == [0, 0, 0, 1, 0, 1]
    np.save(tmp_path / "t.npy", np.arange(6.0).reshape(3, 2))
    (tmp_path / "lab.csv").write_text("label\n0\n1\n0\n")
    assert owndata.read_table(tmp_path / "t.npy", labels=tmp_path / "lab.csv").y.tolist() == [0, 1, 0]
    (tmp_path / "lab2.csv").write_text("label\n0\n1\n")
    with pytest.raises(ConfigError, match="has 2 labels for 3 rows"):
        owndata.read_table(tmp_path / "t.npy", labels=tmp_path / "lab2.csv")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(ConfigError, match="row 0, column 1: NaN"):
        owndata.read_table(tmp_path / "nan.npy")
