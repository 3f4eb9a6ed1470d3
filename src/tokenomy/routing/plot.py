"""The cost–quality plot of an evaluation: the router (and cascade) against the baselines. Needs matplotlib
(``pip install 'tokenomy[route]'``), imported only here and only when a plot is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenomy.errors import ConfigError

_STYLE = {"router": ("C0", "-", 2.2), "router_lambda": ("C0", "--", 1.2), "cascade": ("C1", "-", 1.8),
          "oracle": ("0.55", ":", 1.2),
          "zero_router": ("C2", "--", 1.4), "prompt_length": ("C3", "-.", 1.2), "random": ("0.3", ":", 1.2)}


def plot_curves(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("--plot needs matplotlib: pip install 'tokenomy[route]'") from exc
    figure, axes = plt.subplots(figsize=(7, 5))
    for name, points in result["points"].items():
        color, line, width = _STYLE.get(name, ("C4", "-", 1.0))
        ordered = sorted(points, key=lambda p: p["cost_usd"])
        axes.plot([p["cost_usd"] * 1000 for p in ordered], [p["score"] for p in ordered], line, color=color,
                  linewidth=width, label=_label(name, result["summary"].get(name, {})))
    for key, figures in result["summary"].items():
        if key.startswith("single:"):
            axes.scatter([figures["cost_usd"] * 1000], [figures["score"]], s=22, color="black", zorder=3)
            axes.annotate(key.removeprefix("single:"), (figures["cost_usd"] * 1000, figures["score"]), fontsize=7,
                          xytext=(3, -9), textcoords="offset points")
    axes.set_xlabel("mean cost, USD per 1,000 requests")
    axes.set_ylabel("mean score")
    axes.set_title(f"{', '.join(Path(p).name for p in result['data'])}: {result['rows']} rows")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {path}: {exc}") from exc
    finally:
        plt.close(figure)


def _label(name: str, figures: dict[str, Any]) -> str:
    return f"{name} (APGR {figures['apgr']:.3f})" if "apgr" in figures else name
