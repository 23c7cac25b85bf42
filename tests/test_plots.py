from __future__ import annotations

from fedsparse.plots import _series


def test_series_has_one_curve_per_bitwidth_plus_the_mean() -> None:
    rows = [
        {
            "round": 1,
            "bytes_up": 10,
            "bytes_down": 20,
            "sim_seconds_total": 5.0,
            "accuracy": 0.5,
            "accuracy_by_bitwidth": {"4": 0.4, "32": 0.6},
        },
        {"round": 2, "bytes_up": 10, "bytes_down": 20, "sim_seconds_total": 6.0},  # no evaluation this round
        {
            "round": 3,
            "bytes_up": 10,
            "bytes_down": 20,
            "sim_seconds_total": 7.5,
            "accuracy": 0.7,
            "accuracy_by_bitwidth": {"4": 0.6, "32": 0.8},
        },
    ]
    rounds, curves, megabytes, sim_seconds = _series(rows)
    assert rounds == [1, 3] and megabytes == [30e-6, 90e-6] and sim_seconds == [5.0, 7.5]
    assert curves == {"4-bit": [0.4, 0.6], "32-bit": [0.6, 0.8], "mean": [0.5, 0.7]}


def test_series_of_a_float32_run_is_one_accuracy_curve() -> None:
    rows = [
        {
            "round": 1,
            "bytes_up": 1,
            "bytes_down": 1,
            "sim_seconds_total": 1.0,
            "accuracy": 0.9,
            "accuracy_by_bitwidth": {"32": 0.9},
        }
    ]
    assert _series(rows)[1] == {"accuracy": [0.9]}


def test_comparison_figure_has_a_panel_per_curve_present() -> None:
    from fedsparse.comparison import Band
    from fedsparse.plots import comparison_figure

    band = Band([1.0, 2.0], [0.5, 0.7], [0.4, 0.6], [0.6, 0.8])
    with_val = {"a": {"test_vs_round": band, "val_vs_round": band, "test_vs_mb": band}, "b": {"test_vs_round": band}}
    labels = [ax.get_ylabel() for ax in comparison_figure(with_val, target=0.6).axes]
    assert labels == ["test accuracy", "validation accuracy", "test accuracy"]
    without_val = {"a": {"test_vs_round": band, "test_vs_mb": band}}
    assert [ax.get_xlabel() for ax in comparison_figure(without_val).axes] == [
        "round",
        "cumulative MB moved (up + down)",
    ]
    with_clock = {"a": {"test_vs_round": band, "test_vs_mb": band, "test_vs_sim_seconds": band}}
    axes = comparison_figure(with_clock, target=0.6).axes
    assert [ax.get_xlabel() for ax in axes][-1] == "simulated seconds (device clock)"
    assert axes[-1].get_ylabel() == "test accuracy" and len(axes[-1].lines) == 2  # the curve and the target
