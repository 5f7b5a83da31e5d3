"""``fewshot-gui bench`` prints one JSON object with the figures issue 5 asks for."""

from __future__ import annotations

import json

from fewshot_gui.cli import main


def test_bench_json_has_the_required_keys(capsys) -> None:
    code = main(
        [
            "bench",
            "--images",
            "12",
            "--encoder",
            "conv4",
            "--random-weights",
            "--device",
            "cpu",
            "--json",
            "--relabel-sizes",
            "100,10000",
            "--methods",
            "metric",
            "--rounds",
            "2",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)  # the only thing on standard output
    for key in ("decode_only_img_s", "model_only_img_s", "end_to_end_img_s", "ratio"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert len(result["rounds"]) == 2  # measured in turn, twice; medians reported
    per_round = [e / min(d, m) for d, m, e in result["rounds"]]
    assert abs(result["ratio"] - sum(per_round) / 2) < 0.01
    assert set(result["relabel_ms_10k"]) == {"metric"} and result["relabel_ms_10k"]["metric"] > 0
    assert set(result["relabel_ms_100"]) == {"metric"}
    assert result["peak_rss_mb"] >= result["rss_at_start_mb"] > 0
    assert result["random_weights"] is True and result["images"] == 12


def test_memory_check_reports_growth(capsys) -> None:
    assert main(["bench", "--memory-check", "40", "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["memory_check_images"] == 40
    assert result["peak_rss_growth_mb"] >= 0
    assert result["memory_check_embed_dim"] == 1280  # as large as the default encoder's


def test_unknown_encoder_is_one_plain_line(capsys) -> None:
    assert main(["bench", "--images", "2", "--encoder", "nonesuch", "--random-weights"]) == 2
    assert "unknown encoder" in capsys.readouterr().err


def test_relabel_figures_use_the_encoders_meta_learned_state() -> None:
    """The re-label figures are for the adapters as shipped: memory with its learned projections."""
    from fewshot_gui.bench.relabel import adapter_states, bench_relabel

    states = adapter_states("omniglot", ["memory", "metric", "anil"])
    assert "query_proj.weight" in states["memory"] and "log_scale" in states["metric"]
    assert adapter_states("conv4", ["memory"]) == {"memory": None}  # no checkpoint, no state
    result = bench_relabel(["memory", "metric", "anil"], [300], 64, states, repeats=2)
    assert set(result) == {"memory", "metric", "anil"}
    assert all(v["300"] > 0 for v in result.values())
