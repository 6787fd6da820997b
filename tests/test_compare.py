"""Smoke test of experiments/compare.py --quick: the output contract of issue 8 holds."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import compare  # noqa: E402
import global_margin  # noqa: E402


def test_compare_quick_writes_the_contract(tmp_path):
    out = tmp_path / "c.json"
    assert compare.main(["--quick", "--methods", "fedhft,fedavg-lora,local", "--datasets", "rotten_tomatoes",
                         "--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["runs"]] == ["fedhft", "fedavg-lora", "local"]
    for r in data["runs"]:
        assert {"method", "dataset", "alpha", "levels", "seed", "secure_backend", "personalized_accuracy",
                "global_accuracy", "bytes_up_per_round"} <= set(r)
        assert 0 <= r["personalized_accuracy"] <= 1 and 0 <= r["global_accuracy"] <= 1
    by = {r["method"]: r for r in data["runs"]}
    assert by["fedhft"]["secure_backend"] == "masking" and by["local"]["bytes_up_per_round"] < 100
    eff = data["efficiency"]
    assert eff["upload_full_over_fedhft"] > 1 and eff["memory_full_over_fedhft"] > 0
    assert (tmp_path / "compare_quick.md").read_text().startswith("<!-- made by: python experiments/compare.py")
    assert "made by: <code>python experiments/compare.py --quick" in (tmp_path / "compare_quick.html").read_text()
    # a second invocation reuses the finished run instead of training again
    again = compare.one_run(tmp_path / "runs", "fedavg-lora", "rotten_tomatoes", compare.DEFAULT_ALPHA,
                            compare.DEFAULT_LEVELS, 0, True)
    assert again == by["fedavg-lora"]
    # levels mean nothing to fedavg-lora: its default-levels run stands for it at other levels, marked as such
    lv3 = (1.0, 0.5, 0.25)
    stand = compare.one_run(tmp_path / "runs", "fedavg-lora", "rotten_tomatoes", compare.DEFAULT_ALPHA, lv3, 0, True,
                            start=False)
    assert stand == {**by["fedavg-lora"], "levels": list(lv3), "ran_at_levels": list(compare.DEFAULT_LEVELS)}
    assert compare.one_run(tmp_path / "runs", "fedhft", "rotten_tomatoes", compare.DEFAULT_ALPHA, lv3, 0, True,
                           start=False) is None  # FedHFT's run at those levels is its own (not run here)
    md = compare.markdown(compare.summarize([stand]), data["efficiency"], data["memory"], "cmd")
    assert "| fedavg-lora † |" in md and "† trains rank r whatever a client's level" in md
    # ... and that row, in an earlier JSON, is not taken for the default-levels run it stands for
    (tmp_path / "s.json").write_text(json.dumps({"runs": [stand]}))
    assert compare.main(["--quick", "--finished-only", "--methods", "fedavg-lora", "--datasets", "rotten_tomatoes",
                         "--runs", str(tmp_path / "gone"), "--out", str(tmp_path), "--json", str(tmp_path / "s2.json"),
                         "--reuse", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s2.json").read_text())["runs"] == []
    # ... and so does one whose folder is gone, from the rows of an earlier JSON (--reuse), configuration checked
    gone = compare.main(["--quick", "--finished-only", "--methods", "fedavg-lora", "--datasets", "rotten_tomatoes",
                         "--runs", str(tmp_path / "gone"), "--out", str(tmp_path), "--json", str(tmp_path / "g.json"),
                         "--reuse", str(out)])
    assert gone == 0 and json.loads((tmp_path / "g.json").read_text())["runs"] == [by["fedavg-lora"]]
    row = {**by["fedavg-lora"], "config": {**by["fedavg-lora"]["config"], "seed": 1}}
    with pytest.raises(SystemExit, match=r"--reuse: the row of .* \(seed differ\)"):
        compare.one_run(tmp_path / "gone", "fedavg-lora", "rotten_tomatoes", compare.DEFAULT_ALPHA,
                        compare.DEFAULT_LEVELS, 0, True, reuse={Path(row["run_dir"]).name: row})
    # the global-model diagnostic rebuilds each global model as the run scored it
    gm = tmp_path / "gm.json"
    assert global_margin.main([r["run_dir"] for r in data["runs"]] + ["--json", str(gm)]) == 0
    diag = {d["run"]: d for d in json.loads(gm.read_text())["runs"]}
    for r in data["runs"]:
        d = diag[Path(r["run_dir"]).name]
        if r["method"] == "local":
            assert "skipped" in d
            continue
        assert d["accuracy"] == d["recorded_accuracy"] == r["global_accuracy"]
        assert 0.5 <= d["top_label_share"] <= 1 and 0 <= d["auc"] <= 1 and d["class_gap"] is not None
    done = tmp_path / "runs" / Path(by["fedavg-lora"]["run_dir"]).name / "results.json"
    res = json.loads(done.read_text())
    # ... and stops when it is not the model the run scored
    wrong = {**res["final"], "test_accuracy": res["final"]["test_accuracy"] + .01}
    done.write_text(json.dumps({**res, "final": wrong}))
    with pytest.raises(SystemExit, match="not the model the run scored"):
        global_margin.main([by["fedavg-lora"]["run_dir"]])
    # a finished run of another configuration (a default changed between sessions) is not reused silently
    res["config"]["lora"]["alpha"] += 1
    done.write_text(json.dumps(res))
    with pytest.raises(SystemExit, match="lora.alpha differ"):
        compare.one_run(tmp_path / "runs", "fedavg-lora", "rotten_tomatoes", compare.DEFAULT_ALPHA,
                        compare.DEFAULT_LEVELS, 0, True)
    res["config"]["lora"]["alpha"] -= 1
    # an interrupted run (fewer rounds than configured) is not taken as finished
    res["final"]["rounds_completed"] = 0
    done.write_text(json.dumps(res))
    assert compare.one_run(tmp_path / "runs", "fedavg-lora", "rotten_tomatoes", compare.DEFAULT_ALPHA,
                           compare.DEFAULT_LEVELS, 0, True, start=False) is None
    # --finished-only starts nothing and says how much of the grid it covers; --readme fills the marked section
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{compare.README_BEGIN}\nold\n{compare.README_END}\ntail\n")
    assert compare.main(["--quick", "--finished-only", "--methods", "fedhft,fedavg-lora,local", "--datasets",
                         "rotten_tomatoes", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path), "--json",
                         str(out), "--readme", str(readme)]) == 0
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["runs"]] == ["fedhft", "local"] and data["runs_planned"] == 3
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{compare.README_END}\ntail\n")
    assert "Runs finished: 2 of the 3" in text and "| fedhft |" not in text.split(compare.README_BEGIN)[0]


def test_set_runs_are_kept_apart_from_the_grid():
    """--set KEY=VALUE changes every run; it is in the folder name and may not override what the grid varies."""
    extra = {"train.local_epochs": "4"}
    key = compare.run_key("flexlora", "tweets", 10.0, (1.0, 0.5), 0, False, extra)
    assert key == "flexlora-tweets-a10-l1.0_0.5-s0-train.local_epochs=4"
    assert compare.run_key("flexlora", "tweets", 10.0, (1.0, 0.5), 0, False) == "flexlora-tweets-a10-l1.0_0.5-s0"
    assert compare.overrides("flexlora", "tweets", 10.0, (1.0, 0.5), 0, False, extra)["train.local_epochs"] == "4"
    with pytest.raises(SystemExit, match="data.dirichlet_alpha is the grid's"):
        compare.overrides("flexlora", "tweets", 10.0, (1.0, 0.5), 0, False, {"data.dirichlet_alpha": "1"})
    with pytest.raises(SystemExit, match="method is the grid's"):  # fedhft's folder would hold another method
        compare.overrides("fedhft", "tweets", 10.0, (1.0, 0.5), 0, False, {"method": '"fedavg-lora"'})
    with pytest.raises(SystemExit, match="a key given twice"):
        compare.main(["--set", "train.lr=0.1", "--set", "train.lr=0.2", "--finished-only"])
    with pytest.raises(SystemExit, match="--settings: unknown alpha5; allowed: default, alpha0.1"):
        compare.main(["--settings", "alpha5", "--finished-only"])


def test_standings_rank_fedhft_over_the_seeds_all_federated_rows_finished():
    def row(method, seed, pers, glob):
        return {"method": method, "dataset": "tweets", "alpha": 10.0, "levels": [1.0, 0.5], "seed": seed,
                "personalized_accuracy": pers, "global_accuracy": glob, "personalized_majority_accuracy": 0.5,
                "majority_accuracy": 0.4}
    runs = [row(m, s, 0.6 + 0.01 * i, 0.7 - 0.01 * i) for i, m in enumerate(compare.FEDERATED) for s in (0, 1)]
    runs += [row("flexlora", 2, 0.99, 0.99), row("central", 0, 0.99, 0.99)]  # seed 2: flexlora alone
    [st] = compare.standings(runs)
    assert st["seeds"] == [0, 1]  # seed 2 is left out: the others have not run it
    p, g = st["personalized"], st["global"]
    assert (p["rank"], p["of"], p["best_other"]) == (len(compare.FEDERATED), 8, compare.FEDERATED[-1])
    assert p["fedhft"] == pytest.approx(0.6) and p["best_other_mean"] == pytest.approx(0.67)
    assert (g["rank"], g["best_other"]) == (1, compare.OTHERS[0])  # central is not a federated row
    assert "| tweets | 10 | [1.0, 0.5] | 0, 1 | 0.600 (8 of 8) | flexlora 0.670 | 0.500 |" in "\n".join(
        compare.standings_markdown([st]))
    assert compare.standings([r for r in runs if r["method"] != "hetlora"]) == []  # a federated row missing
    tied = [{**r, "personalized_accuracy": 0.5} if r["method"] in ("fedhft", "ffa-lora") else r for r in runs]
    assert compare.standings(tied)[0]["personalized"]["rank"] == 7  # a tie for last takes the better rank
