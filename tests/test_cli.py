"""The command line end to end on tiny models: files, errors, config files, store reuse, kill and resume."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.report import read_run

HOSTILE = "<script>alert('pwned')</script>"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def dataset(tmp_path):
    texts = synthetic_texts(24, seed=31, max_words=40)
    texts[3] = f"A hostile sample {HOSTILE} in the text."
    records = [{"id": f"s{i}", "text": t, "label": i % 2} for i, t in enumerate(texts)]
    records[5]["id"] = HOSTILE
    return write_jsonl(tmp_path / "data.jsonl", records)


def test_audit_writes_every_run_file(tiny_model_dir, dataset, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    code = run_cli(
        "audit",
        "--model",
        tiny_model_dir,
        "--data",
        dataset,
        "--reference",
        tiny_model_dir,
        "--attacks",
        "all,min_k[k=0.1,0.3]",
        "--out",
        out,
        "--bootstrap",
        "50",
    )
    assert code == 0
    for name in ("results.json", "scores.csv", "scores.parquet", "manifest.json", "roc.png", "report.html"):
        assert (out / name).is_file(), name
    results, scores, manifest = read_run(out)
    expected = {
        "loss",
        "zlib",
        "lowercase",
        "min_k[k=0.2]",  # the default, named because min_k also runs at 0.1 and 0.3
        "max_k",
        "min_k_pp",
        "surp",
        "max_renyi[alpha=0.5]",
        "max_renyi[alpha=1]",
        "max_renyi[alpha=2]",
        "max_renyi[alpha=inf]",
        "dc_pdd",
        "reference",
        "min_k[k=0.1]",
        "min_k[k=0.3]",
        "blind_bow",
        "blind_date",
        "blind_ngram",
    }
    assert set(results["attacks"]) == expected
    best = results["epsilon"]["attack"]
    assert results["comparison"]["best"] == best and best not in results["comparison"]["pairs"]
    assert not any(name.startswith("blind_") for name in results["comparison"]["pairs"])  # attacks only
    assert results["epsilon"]["epsilon_lower_bound"] >= 0 and results["epsilon"]["n_members"] == 12
    assert list(scores.columns[:2]) == ["id", "label"] and set(scores.columns[2:]) == expected
    assert len(scores) == 24 and HOSTILE in set(scores["id"])
    for metrics in results["attacks"].values():
        assert set(metrics) == {
            "auroc",
            "tpr_at_0.1pct_fpr",
            "tpr_at_1pct_fpr",
            "tpr_at_5pct_fpr",
            "fpr_at_95pct_tpr",
            "balanced_accuracy",
        }
        assert set(metrics["auroc"]) >= {"value", "ci_low", "ci_high"}
        assert metrics["tpr_at_1pct_fpr"]["estimable"] is False  # 12 non-members < 1/0.01
    parquet = pd.read_parquet(out / "scores.parquet")
    pd.testing.assert_frame_equal(parquet.reset_index(drop=True), scores.reset_index(drop=True), check_dtype=False)
    assert set(manifest["counts"]) == {
        "forward_passes_computed",
        "forward_passes_cached",
        "tokens_computed",
        "tokens_cached",
        "backward_passes_computed",
    }
    assert manifest["counts"]["backward_passes_computed"] == 0  # no gradient attack ran
    assert manifest["model"]["fingerprint"].startswith("sha256:")
    assert manifest["data"]["hash"] and manifest["versions"]["torch"]
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert HOSTILE not in html and "<script>alert" not in html
    # a bound under 0.005 is no evidence at all and is said so, not printed as a figure
    epsilon = results["epsilon"]
    if epsilon.get("withheld"):
        assert "epsilon lower bound withheld" in html
    elif epsilon["epsilon_lower_bound"] < 0.005:
        assert "no evidence of leakage at this sample size" in html.lower()
    else:
        assert "epsilon lower bound" in html
    assert f"compared with the best ({best})" in html
    assert "&lt;script&gt;" in html or "script&gt;" in html or "pwned" not in html
    printed = capsys.readouterr().out
    assert "report.html" in printed and "AUROC" in printed.replace("auroc", "AUROC")


def test_rerun_with_added_attacks_makes_no_forward_pass(tiny_model_dir, dataset, tmp_path, cache_dir):
    assert run_cli("audit", "-m", tiny_model_dir, "-d", dataset, "-a", "loss", "-o", tmp_path / "a") == 0
    first = json.loads((tmp_path / "a" / "manifest.json").read_text())["counts"]
    assert first["forward_passes_computed"] > 0
    code = run_cli("audit", "-m", tiny_model_dir, "-d", dataset, "-a", "loss,min_k,min_k_pp,surp", "-o", tmp_path / "b")
    assert code == 0
    second = json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]
    assert second["forward_passes_computed"] == 0 and second["tokens_computed"] == 0
    assert second["forward_passes_cached"] == 24 and second["tokens_cached"] == first["tokens_computed"]


HEAVY = ("torch", "transformers", "sklearn", "matplotlib", "scipy.stats")
IMPORTED = (
    "import sys; from miakit.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))"
)


def test_fully_stored_rerun_loads_no_model_and_draws_nothing(tiny_model_dir, dataset, tmp_path, cache_dir):
    """A rerun whose signals, blind baselines and figures are all stored imports neither torch, transformers,
    scikit-learn nor matplotlib, and writes the same results and figures as the run that computed them."""
    args = ["audit", "-m", tiny_model_dir, "-d", dataset, "-a", "loss,zlib,min_k", "--no-progress"]

    def run(out: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", IMPORTED, *map(str, args), "-o", str(tmp_path / out)],
            capture_output=True,
            text=True,
            env={**os.environ, "MIAKIT_CACHE": str(cache_dir)},
            cwd=tmp_path,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.splitlines()[-1]

    assert run("first") != "HEAVY []"  # the first run computes: it needs them
    assert run("again") == "HEAVY []"
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["counts"]["forward_passes_computed"] == 0
    assert manifest["model"] == json.loads((tmp_path / "first" / "manifest.json").read_text())["model"]
    for name in ("roc.png", "scores.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name
    first, again = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("first", "again"))
    assert again["attacks"] == first["attacks"] and again["warnings"] == first["warnings"]


def test_config_file_gives_the_same_options(tiny_model_dir, dataset, tmp_path, cache_dir):
    config = tmp_path / "audit.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\ndata: {dataset.name}\nattacks: [loss, 'min_k[k=0.1]']\nout: run\nbootstrap: 20\n"
    )
    assert run_cli("audit", config) == 0
    results, _, manifest = read_run(tmp_path / "run")
    assert set(results["attacks"]) == {"loss", "min_k[k=0.1]", "blind_bow", "blind_date", "blind_ngram"}
    assert manifest["config"]["bootstrap"] == 20


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, m, t: ["audit", "-m", m, "-d", t / "missing.jsonl"], "missing.jsonl"),
        (lambda d, m, t: ["audit", "-m", t / "no-model", "-d", d], "the folder does not exist"),
        (lambda d, m, t: ["audit", "-m", m, "-d", d, "-a", "loss,nonsense"], "Unknown attack 'nonsense'"),
        (lambda d, m, t: ["audit", "-m", m, "-d", d, "-a", "min_k[k=7]"], "k must be in"),
        (lambda d, m, t: ["audit", "-m", m, "-d", d, "--dtype", "float8"], "dtype"),
        (
            lambda d, m, t: [
                "audit",
                "-m",
                m,
                "-d",
                write_jsonl(t / "bad.jsonl", [{"text": "x y", "label": "maybe"}]),
            ],
            "maybe",
        ),
        (lambda d, m, t: ["audit", "-d", d], "No target model"),
        (lambda d, m, t: ["report", t], "run directory"),
    ],
)
def test_user_errors_exit_2_with_one_paragraph_and_no_traceback(
    make_args, message, tiny_model_dir, dataset, tmp_path, cache_dir, capsys
):
    assert run_cli(*make_args(dataset, str(tiny_model_dir), tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err.replace("\n", " ") or message in " ".join(err.split())
    assert "Traceback" not in err


def test_config_typo_is_a_user_error(tiny_model_dir, dataset, tmp_path, cache_dir, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndata: {dataset}\nbatchsize: 4\n")
    assert run_cli("audit", config) == 2
    assert "batchsize" in capsys.readouterr().err


def test_attacks_command_lists_the_registry(capsys):
    assert run_cli("attacks") == 0
    out = capsys.readouterr().out
    for name in ("loss", "zlib", "lowercase", "min_k_pp", "surp", "max_renyi", "dc_pdd", "reference"):
        assert name in out


def test_report_rerenders_a_run(tiny_model_dir, dataset, tmp_path, cache_dir):
    out = tmp_path / "run"
    assert run_cli("audit", "-m", tiny_model_dir, "-d", dataset, "-a", "loss", "-o", out, "--bootstrap", "10") == 0
    (out / "report.html").unlink()
    (out / "roc.png").unlink()
    assert run_cli("report", out) == 0
    assert (out / "report.html").is_file() and (out / "roc.png").is_file()


def _rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_without_recomputing_or_corruption(tiny_model_dir, tmp_path):
    texts = synthetic_texts(1500, seed=41, min_words=4, max_words=20)
    data = write_jsonl(tmp_path / "big.jsonl", [{"text": t, "label": i % 2} for i, t in enumerate(texts)])
    n_unique = len(set(texts))
    env = {**os.environ, "MIAKIT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    store = tmp_path / "cache" / "store.sqlite"
    args = [
        sys.executable,
        "-m",
        "miakit.cli",
        "audit",
        "-m",
        str(tiny_model_dir),
        "-d",
        str(data),
        "-a",
        "loss",
        "--batch-size",
        "1",
        "--bootstrap",
        "0",
    ]
    proc = subprocess.Popen(
        [*args, "-o", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while _rows(store) < 100 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = _rows(store)
    assert 0 < stored < n_unique, "the run must be killed part-way through extraction"

    subprocess.run([*args, "-o", str(tmp_path / "resumed")], env=env, check=True, capture_output=True)
    counts = json.loads((tmp_path / "resumed" / "manifest.json").read_text())["counts"]
    assert counts["forward_passes_cached"] >= stored  # nothing stored was recomputed ...
    assert counts["forward_passes_cached"] + counts["forward_passes_computed"] == n_unique  # ... nothing lost
    # every text's statistics and token length, the blind baselines' scores of the data, the two report figures
    assert _rows(store) == 2 * n_unique + 1 + 2

    fresh_env = {**env, "MIAKIT_CACHE": str(tmp_path / "fresh-cache")}
    subprocess.run([*args, "-o", str(tmp_path / "fresh")], env=fresh_env, check=True, capture_output=True)
    resumed = pd.read_parquet(tmp_path / "resumed" / "scores.parquet")
    fresh = pd.read_parquet(tmp_path / "fresh" / "scores.parquet")
    pd.testing.assert_series_equal(resumed["loss"], fresh["loss"], rtol=1e-6)


def test_members_nonmembers_files_max_samples_and_no_cache(tiny_model_dir, tmp_path, cache_dir):
    members = write_jsonl(tmp_path / "m.jsonl", [{"text": t} for t in synthetic_texts(20, seed=51)])
    nonmembers = write_jsonl(tmp_path / "n.jsonl", [{"text": t} for t in synthetic_texts(20, seed=52)])
    out = tmp_path / "run"
    code = run_cli(
        "audit",
        "-m",
        tiny_model_dir,
        "--members",
        members,
        "--nonmembers",
        nonmembers,
        "--max-samples",
        "16",
        "-a",
        "loss",
        "-o",
        out,
        "--no-cache",
        "--bootstrap",
        "10",
    )
    assert code == 0
    results, scores, manifest = read_run(out)
    assert len(scores) == 16 and scores["label"].sum() == 8
    assert manifest["store"] is None and not (cache_dir / "store.sqlite").exists()
    assert results["details"]["loss"]["n_members"] == 8


def test_audit_with_a_calibration_file_removes_overlap_and_reports_it(tiny_model_dir, dataset, tmp_path, cache_dir):
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    known = [{"id": f"k{i}", "text": r["text"], "label": r["label"]} for i, r in enumerate(rows[:4])]
    known += [{"id": f"x{i}", "text": t, "label": i % 2} for i, t in enumerate(synthetic_texts(6, seed=77))]
    calibration = write_jsonl(tmp_path / "calibration.jsonl", known)
    out = tmp_path / "run"
    args = ("--model", tiny_model_dir, "--data", dataset, "--calibration", calibration, "--out", out)
    assert run_cli("audit", *args, "--attacks", "loss,recall[n_shots=2],activation_probe", "--bootstrap", "0") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["calibration"]["removed_from_scoring"] == 4
    assert {"recall[n_shots=2]", "activation_probe"} <= set(results["calibration"]["fitted"])
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 20 and not set(scores["id"]) & {r["id"] for r in rows[:4]}
    html = (out / "report.html").read_text()
    assert "removed from scoring" in html and "per-layer probe AUROC" in html
    assert len(results["calibration"]["details"]["activation_probe"]["layer_auroc"]) == 3  # embeddings + 2 layers


def test_audit_of_a_benchmark_laid_out_like_wikimia(tiny_model_dir, tmp_path, cache_dir):
    folder = tmp_path / "wikimia"
    folder.mkdir()
    rows = [{"input": t, "label": i % 2} for i, t in enumerate(synthetic_texts(12, seed=41, max_words=20))]
    write_jsonl(folder / "WikiMIA_length32.jsonl", rows)
    out = tmp_path / "run"
    args = ("--model", tiny_model_dir, "--benchmark", "wikimia:32", "--benchmark-path", folder)
    assert run_cli("audit", *args, "--attacks", "loss", "--out", out, "--bootstrap", "0") == 0
    results = json.loads((out / "results.json").read_text())
    assert any("2017" in w or "temporal" in w.lower() for w in results["warnings"]), results["warnings"]
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 12 and scores["id"].str.startswith("wikimia-").all()
    assert run_cli("audit", "--model", tiny_model_dir, "--benchmark", "wikimia:33", "--out", tmp_path / "x") == 2
