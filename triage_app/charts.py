"""Plotly figures for the Thresholds and Dashboard pages (built from plain frames, no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import roc_auc_score, roc_curve

LABEL_NAMES = {0: "flowing (crowd)", 1: "stalled (crowd)"}
LABEL_COLOURS = {0: "#1f77b4", 1: "#d62728"}


def _band(fig: go.Figure, x: pd.Series, point: pd.Series, lower: pd.Series, name: str, colour: str,
          col: int) -> None:
    """A point-estimate line with its lower confidence bound shaded below it."""
    fig.add_trace(go.Scatter(x=x, y=lower, mode="lines", line={"width": 0}, showlegend=False,
                             hoverinfo="skip"), row=1, col=col)
    fig.add_trace(go.Scatter(x=x, y=point, mode="lines", fill="tonexty", line={"color": colour},
                             fillcolor=colour.replace("rgb", "rgba").replace(")", ",0.2)"),
                             name=name, customdata=np.stack([lower], axis=-1),
                             hovertemplate="auto %{x:.1%}: %{y:.4f} (bound %{customdata[0]:.4f})"),
                  row=1, col=col)


def _same(values: pd.Series, threshold: float | None) -> pd.Series:
    """Rows whose threshold equals ``threshold`` (None: that side decides nothing, NaN in the curve)."""
    return values.isna() if threshold is None else values == threshold


def tradeoff_figure(curve: pd.DataFrame, *, sensitivity: float, specificity: float,
                    chosen: tuple[float | None, float | None] | None = None) -> go.Figure:
    """Automatic share vs combined sensitivity (moving t_low) and specificity (moving t_high).

    ``curve`` is ``TunedTriagePolicy.curve_``; bands run from the lower confidence bound up to
    the point estimate, dashed lines are the targets, the star is the chosen policy.
    """
    fig = make_subplots(rows=1, cols=2, shared_xaxes=False,
                        subplot_titles=("Sensitivity (moving t_low)", "Specificity (moving t_high)"))
    for col, (sweep, metric, target, colour) in enumerate(
            (("t_low", "sensitivity", sensitivity, "rgb(214,39,40)"),
             ("t_high", "specificity", specificity, "rgb(31,119,180)")), start=1):
        rows = curve[curve["sweep"] == sweep].sort_values("auto_share")
        _band(fig, rows["auto_share"], rows[metric], rows[f"{metric}_lower"], metric, colour, col)
        fig.add_hline(y=target, line_dash="dash", line_color="grey", row=1, col=col)
        if chosen is not None:
            hit = rows[_same(rows["t_low"], chosen[0]) & _same(rows["t_high"], chosen[1])]
            fig.add_trace(go.Scatter(x=hit["auto_share"], y=hit[metric], mode="markers", showlegend=col == 1,
                                     marker={"symbol": "star", "size": 14, "color": "black"}, name="chosen policy"),
                          row=1, col=col)
        fig.update_xaxes(title_text="share decided automatically", tickformat=".0%", row=1, col=col)
    fig.update_layout(height=380, margin={"t": 40, "b": 40, "l": 40, "r": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def score_histogram(reference: pd.DataFrame, *, t_low: float | None = None, t_high: float | None = None,
                    bins: int = 50) -> go.Figure:
    """Model probabilities by crowd label (log counts), with the thresholds as vertical lines."""
    fig = go.Figure()
    for label, name in LABEL_NAMES.items():
        scores = reference.loc[reference["label"] == label, "probability"]
        fig.add_trace(go.Histogram(x=scores, name=f"{name} ({len(scores)})", opacity=0.6,
                                   xbins={"start": 0, "end": 1, "size": 1 / bins},
                                   marker_color=LABEL_COLOURS[label]))
    for value, name, side in ((t_low, "t_low", "top left"), (t_high, "t_high", "top right")):
        if value is not None and 0 <= value <= 1:
            fig.add_vline(x=value, line_dash="dash", annotation_text=name, annotation_position=side)
    fig.update_layout(barmode="overlay", height=320, yaxis_type="log", xaxis_title="model probability",
                      yaxis_title="stacks", margin={"t": 30, "b": 40, "l": 40, "r": 10})
    return fig


def roc_figure(reference: pd.DataFrame) -> go.Figure:
    """ROC curve of the model against crowd labels, AUC in the title."""
    fpr, tpr, _ = roc_curve(reference["label"], reference["probability"])
    auc = roc_auc_score(reference["label"], reference["probability"])
    fig = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name="model"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                             showlegend=False))
    fig.update_layout(title=f"ROC (AUC {auc:.3f}, {len(reference)} stacks)", height=320,
                      xaxis_title="false-positive rate", yaxis_title="true-positive rate",
                      margin={"t": 40, "b": 40, "l": 40, "r": 10})
    return fig


def throughput_figure(per_hour: pd.DataFrame) -> go.Figure:
    """Reviews per hour (``hour``, ``reviews`` columns), stacked by reviewer if ``user`` is given."""
    fig = go.Figure()
    groups = per_hour.groupby("user") if "user" in per_hour else [("reviews", per_hour)]
    for name, rows in groups:
        fig.add_trace(go.Bar(x=rows["hour"], y=rows["reviews"], name=str(name), width=0.9 * 3_600_000))  # ms
    fig.update_layout(barmode="stack", height=300, yaxis_title="reviews per hour", xaxis_tickformat="%b %d %H:00",
                      xaxis_dtick=3_600_000, margin={"t": 20, "b": 40, "l": 40, "r": 10})
    return fig
