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


MARKERS = {"saved policy": {"symbol": "diamond", "size": 12, "color": "#2ca02c"},
           "proposed": {"symbol": "star", "size": 15, "color": "black"}}


def tradeoff_figure(curve: pd.DataFrame, *, sensitivity: float, specificity: float,
                    policies: dict[str, tuple[float, float, float]] | None = None) -> go.Figure:
    """Automatic share vs combined sensitivity (moving t_low) and specificity (moving t_high).

    ``curve`` is ``TunedTriagePolicy.curve_``; bands run from the lower confidence bound up to
    the point estimate, dashed lines are the targets. ``policies`` maps a name ("saved policy",
    "proposed") to its (automatic share, sensitivity, specificity) on the reference set: each is
    marked on both panels, so the chosen policy is visible at first view.
    """
    fig = make_subplots(rows=1, cols=2, shared_xaxes=False, horizontal_spacing=0.08,
                        subplot_titles=("Sensitivity (moving t_low)", "Specificity (moving t_high)"))
    for col, (sweep, metric, target, colour) in enumerate(
            (("t_low", "sensitivity", sensitivity, "rgb(214,39,40)"),
             ("t_high", "specificity", specificity, "rgb(31,119,180)")), start=1):
        rows = curve[curve["sweep"] == sweep].sort_values("auto_share")
        _band(fig, rows["auto_share"], rows[metric], rows[f"{metric}_lower"], metric, colour, col)
        fig.add_hline(y=target, line_dash="dash", line_color="grey", row=1, col=col,
                      annotation_text=f"target {target:g}", annotation_position="bottom left")
        for name, (share, sens, spec) in (policies or {}).items():
            fig.add_trace(go.Scatter(x=[share], y=[sens if metric == "sensitivity" else spec], mode="markers",
                                     marker=MARKERS.get(name, {"size": 12}), name=name, showlegend=col == 1,
                                     hovertemplate=f"{name}: auto %{{x:.1%}}, {metric} %{{y:.4f}}<extra></extra>"),
                          row=1, col=col)
        fig.update_xaxes(title_text="share decided automatically", tickformat=".0%", row=1, col=col)
    fig.update_layout(height=380, margin={"t": 40, "b": 40, "l": 50, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def score_histogram(reference: pd.DataFrame, *, t_low: float | None = None, t_high: float | None = None,
                    bins: int = 40) -> go.Figure:
    """Model probabilities by crowd label, with the thresholds as vertical lines.

    Stalls are rare, so each label gets its own panel with its own count axis (a shared log axis
    squeezes the rare class into a few pixels and crowds its labels).
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{name}: {int((reference['label'] == label).sum()):,} stacks"
                                        for label, name in LABEL_NAMES.items()])
    for row, (label, name) in enumerate(LABEL_NAMES.items(), start=1):
        scores = reference.loc[reference["label"] == label, "probability"]
        fig.add_trace(go.Histogram(x=scores, name=name, xbins={"start": 0, "end": 1, "size": 1 / bins},
                                   marker_color=LABEL_COLOURS[label], showlegend=False), row=row, col=1)
        fig.update_yaxes(title_text="stacks", rangemode="tozero", nticks=4, row=row, col=1)
        for value, text, side in ((t_low, "t_low", "bottom left"), (t_high, "t_high", "bottom right")):
            if value is not None and 0 <= value <= 1:
                label = {"annotation_text": text, "annotation_position": side} if row == 2 else {}
                fig.add_vline(x=value, line_dash="dash", line_color="black", row=row, col=1, **label)
    fig.update_xaxes(title_text="model probability (stalled)", range=[0, 1], row=2, col=1)
    fig.update_layout(height=420, bargap=0.05, margin={"t": 40, "b": 40, "l": 50, "r": 10})
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


def throughput_figure(per_hour: pd.DataFrame, *, hours: int = 48) -> go.Figure:
    """Reviews per hour (``hour``, ``reviews`` columns), stacked by reviewer if ``user`` is given.

    The time axis always spans the last ``hours`` hours (plus the current one), so a single busy
    hour is one narrow bar in its place, not a bar filling the chart.
    """
    fig = go.Figure()
    groups = per_hour.groupby("user") if "user" in per_hour else [("reviews", per_hour)]
    for name, rows in groups:
        fig.add_trace(go.Bar(x=rows["hour"], y=rows["reviews"], name=str(name), width=0.8 * 3_600_000))  # ms
    end = pd.Timestamp.now(tz="UTC").floor("h") + pd.Timedelta(hours=1)
    fig.update_layout(barmode="stack", height=300, yaxis_title="reviews per hour",
                      xaxis={"range": [end - pd.Timedelta(hours=hours), end], "tickformat": "%b %d %H:00"},
                      legend={"title": "reviewer"}, margin={"t": 20, "b": 40, "l": 50, "r": 10})
    return fig


def burndown_figure(reviews: pd.DataFrame, *, reviews_left: int, per_day: float, finish: pd.Timestamp | None,
                    now: pd.Timestamp) -> go.Figure:
    """Reviews still to do over time (reconstructed from the review dates) and the forecast at
    the current pace, dashed, down to zero at ``finish``."""
    counted = list(pd.to_datetime(reviews.loc[reviews["answer"] != "unsure", "created_at"], utc=True).sort_values())
    times = [*counted[:1], *counted, now]  # the level before the first review, after each one, now
    left = reviews_left + len(counted) - np.minimum(np.arange(len(times)), len(counted))
    fig = go.Figure(go.Scatter(x=times, y=left, mode="lines", line={"shape": "hv", "color": "#1f77b4"},
                               name="reviews left"))
    if finish is not None and reviews_left > 0:
        fig.add_trace(go.Scatter(x=[now, finish], y=[reviews_left, 0], mode="lines", name=f"at {per_day:,.0f}/day",
                                 line={"dash": "dash", "color": "#ff7f0e"}))
    fig.update_layout(height=300, yaxis_title="reviews left", yaxis_rangemode="tozero",
                      legend={"orientation": "h", "y": -0.2}, margin={"t": 20, "b": 40, "l": 50, "r": 10})
    return fig


def workload_figure(comparison: pd.DataFrame, *, done: int) -> go.Figure:
    """Human answers needed per scenario (crowd, review everything, with the model), with the
    answers already given under the model marked."""
    fig = go.Figure(go.Bar(y=comparison["scenario"], x=comparison["human answers"], orientation="h",
                           marker_color=["#9467bd", "#7f7f7f", "#2ca02c"], text=comparison["how"],
                           textposition="auto", hovertemplate="%{y}: %{x:,} answers<extra></extra>"))
    fig.add_vline(x=done, line_dash="dot", annotation_text=f"given so far: {done:,}", annotation_position="top")
    top = np.log10(max(10, float(comparison["human answers"].max()), done) * 4)  # room for the labels
    fig.update_layout(height=260, xaxis={"title": "human answers needed", "type": "log", "dtick": 1, "range": [0, top]},
                      yaxis_autorange="reversed",
                      margin={"t": 30, "b": 40, "l": 10, "r": 10}, showlegend=False)
    return fig


def time_range(times: pd.Series, *, least: pd.Timedelta) -> list[pd.Timestamp]:
    """An x range around ``times`` at least ``least`` wide (5 % margins otherwise).

    Plotly fits a time axis to the data: one point, or points seconds apart, get ticks in
    sub-millisecond steps. A range of at least ``least`` keeps the ticks at readable dates.
    """
    naive = pd.to_datetime(times, utc=True).dt.tz_localize(None)  # UTC without an offset, as Plotly writes
    start, end = naive.min(), naive.max()                          # time data (an offset would not parse)
    pad = max((end - start) * 0.05, (least - (end - start)) / 2)
    return [start - pad, end + pad]


#: Up to this many points a chart writes each point's value beside it (more would crowd the chart).
LABELLED_POINTS = 14


def agreement_figure(by_day: pd.DataFrame) -> go.Figure:
    """Daily agreement of reviewers with each other and with the model; marker size shows how
    many answers each point rests on, and with few points each is labelled with its share and
    count. A series without answers (one reviewer: no one to agree with) is left out, and the
    legend always names what is shown."""
    fig = go.Figure()
    for column, count, name, colour in (("with_reviewers", "reviewer_answers", "with other reviewers", "#1f77b4"),
                                        ("with_model", "model_answers", "with the model", "#d62728")):
        rows = by_day[by_day[count] > 0]
        if rows.empty:
            continue
        size = 6 + 14 * np.sqrt(rows[count] / max(1, by_day[count].max()))
        labels = [f"{share:.0%} of {n}" for share, n in zip(rows[column], rows[count])]
        fig.add_trace(go.Scatter(x=rows["day"], y=rows[column], name=name, line={"color": colour},
                                 mode="lines+markers+text" if len(rows) <= LABELLED_POINTS else "lines+markers",
                                 marker={"size": size, "color": colour}, text=labels, textposition="top center",
                                 customdata=rows[count], hovertemplate="%{x|%b %d}: %{y:.0%} of %{customdata} "
                                                                       "answers<extra></extra>"))
    fig.update_layout(height=300, yaxis={"title": "answers agreeing", "tickformat": ".0%", "range": [0, 1.12]},
                      xaxis={"tickformat": "%b %d", "dtick": 86_400_000,
                             "range": time_range(by_day["day"], least=pd.Timedelta(days=2))},
                      showlegend=True, legend={"orientation": "h", "y": -0.2},
                      margin={"t": 20, "b": 40, "l": 50, "r": 10})
    return fig


def auto_share_figure(history: pd.DataFrame) -> go.Figure:
    """Automatic share of each saved policy over time (its run's scored stacks), the active one marked:
    how the share decided without humans grows as reviews retrain the model. Few points are labelled
    with their share; one policy sits in the middle of a two-day axis."""
    labelled = len(history) <= LABELLED_POINTS
    figure = go.Figure(go.Scatter(x=history["created_at"], y=history["auto_share"],
                                  mode="lines+markers+text" if labelled else "lines+markers",
                                  text=[f"{share:.0%}" for share in history["auto_share"]], textposition="top center",
                                  customdata=history["run"].map(lambda name: str(name).rsplit("/", 1)[-1]),
                                  hovertemplate="%{x|%b %d %H:%M}<br>%{customdata}<br>automatic %{y:.1%}"
                                                "<extra></extra>", name="saved policy"))
    active = history[history["active"].astype(bool)]
    figure.add_trace(go.Scatter(x=active["created_at"], y=active["auto_share"], mode="markers", name="active",
                                marker={"size": 14, "symbol": "star"}, hoverinfo="skip"))
    figure.update_layout(xaxis={"title": "policy saved (UTC)", "tickformat": "%b %d %H:%M",
                                "range": time_range(history["created_at"], least=pd.Timedelta(days=2))},
                         yaxis_title="decided automatically", yaxis_tickformat=".0%", yaxis_range=[0, 1.1],
                         showlegend=True, height=320, margin={"t": 20})
    return figure


def frontier_figure(frontier: pd.DataFrame, *, sensitivity: float, specificity: float,
                    chosen: tuple[float, float, float] | None = None) -> go.Figure:
    """The automation–quality frontier: for each automatic share, the best lower bounds of
    sensitivity and specificity a policy deciding at least that share reaches
    (``TunedTriagePolicy.frontier_``), the targets dashed, the proposed policy marked."""
    fig = go.Figure()
    for metric, colour, target in (("sensitivity", LABEL_COLOURS[1], sensitivity),
                                   ("specificity", LABEL_COLOURS[0], specificity)):
        fig.add_trace(go.Scatter(x=frontier["share"], y=frontier[f"{metric}_lower"], mode="lines+markers",
                                 line={"color": colour, "shape": "hv"}, name=f"{metric} bound",
                                 hovertemplate=f"at least %{{x:.0%}} automatic: {metric} ≥ %{{y:.4f}}<extra></extra>"))
        fig.add_hline(y=target, line_dash="dash", line_color=colour, annotation_text=f"{metric} target {target:g}",
                      annotation_position="bottom left")
    if chosen is not None:
        share, sens, spec = chosen
        fig.add_trace(go.Scatter(x=[share, share], y=[sens, spec], mode="markers", name="proposed",
                                 marker=MARKERS["proposed"],
                                 hovertemplate="proposed: %{x:.1%} automatic, bound %{y:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="share decided automatically (at least)", tickformat=".0%", range=[-0.02, 1.02])
    fig.update_yaxes(title_text="lower confidence bound")
    fig.update_layout(height=360, margin={"t": 30, "b": 40, "l": 60, "r": 10}, legend={"orientation": "h", "y": -0.3})
    return fig
