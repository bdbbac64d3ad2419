// Thin helpers over plotly.js (served at /static/vendor/plotly.min.js, loaded with a
// classic <script defer> before the page modules run): one look for every page.
//
//   barChart(el, { x, y, orientation: "h", logScale: true, valueLabels: true, title })
//   paretoChart(el, { labels, values, title, valueTitle })
//   lineTrend(el, { series: [{ name, x, y }], title, yTitle, percent })

const PALETTE = ["#1f6fb2", "#e07b39", "#2f9e6e", "#c0436b", "#7a5cc2", "#8a8f2a", "#3aa5b8", "#9b6b43"];
const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif", size: 14, color: "#17202b" };
const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

function plotly() {
  if (!window.Plotly) throw new Error("plotly.js is not loaded on this page");
  return window.Plotly;
}

/** The shared layout, merged with a chart's own settings. */
export function baseLayout(overrides = {}) {
  return {
    font: FONT,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 60, r: 24, t: overrides.title ? 48 : 16, b: 56 },
    hoverlabel: { font: { size: 14 } },
    legend: { orientation: "h", y: -0.18 },
    colorway: PALETTE,
    ...overrides,
    title: overrides.title ? { text: overrides.title, x: 0, xanchor: "left", font: { size: 16 } } : undefined,
    xaxis: { gridcolor: "#e6eaf0", zerolinecolor: "#c3cad5", automargin: true, ...overrides.xaxis },
    yaxis: { gridcolor: "#e6eaf0", zerolinecolor: "#c3cad5", automargin: true, ...overrides.yaxis },
  };
}

/** Draw (or redraw) a chart in `el`; returns plotly's promise. */
export function draw(el, traces, layout = {}) {
  return plotly().react(el, traces, baseLayout(layout), CONFIG);
}

/** Vertical or horizontal bars; `valueLabels` writes each value (3 significant digits,
 *  SI suffix) on its bar and drops the value axis ticks. */
export function barChart(el, { x, y, orientation = "v", logScale = false, valueLabels = false, title, xTitle, yTitle, color = PALETTE[0], hover }) {
  const horizontal = orientation === "h";
  const valueAxis = {
    title: { text: horizontal ? xTitle : yTitle }, type: logScale ? "log" : "linear",
    dtick: logScale ? 1 : undefined, showticklabels: !valueLabels, showgrid: !valueLabels,
  };
  const categoryAxis = { title: { text: horizontal ? yTitle : xTitle }, type: "category" };
  if (horizontal) categoryAxis.autorange = "reversed";
  const value = horizontal ? "x" : "y";
  return draw(el, [{
    type: "bar", x, y, orientation, marker: { color },
    texttemplate: valueLabels ? `%{${value}:.3~s}` : undefined,
    textposition: valueLabels ? "outside" : undefined,
    cliponaxis: false,
    hovertemplate: hover || (horizontal ? "%{y}: %{x:,}<extra></extra>" : "%{x}: %{y:,}<extra></extra>"),
  }], {
    title,
    xaxis: horizontal ? valueAxis : categoryAxis,
    yaxis: horizontal ? categoryAxis : valueAxis,
    showlegend: false,
    margin: { l: 60, r: valueLabels && horizontal ? 56 : 24, t: title ? 48 : 16, b: valueLabels && horizontal ? 16 : 56 },
  });
}

/** Bars sorted descending with a cumulative-percent line on a second axis. */
export function paretoChart(el, { labels, values, title, valueTitle = "Quantity", top = 20 }) {
  const pairs = labels.map((label, i) => [label, Number(values[i]) || 0]).sort((a, b) => b[1] - a[1]).slice(0, top);
  const total = values.reduce((sum, v) => sum + (Number(v) || 0), 0) || 1;
  let running = 0;
  const cumulative = pairs.map(([, v]) => { running += v; return (100 * running) / total; });
  const x = pairs.map(([label]) => label);
  return draw(el, [
    { type: "bar", name: valueTitle, x, y: pairs.map(([, v]) => v), marker: { color: PALETTE[0] }, hovertemplate: "%{x}: %{y:,}<extra></extra>" },
    { type: "scatter", mode: "lines+markers", name: "Cumulative %", x, y: cumulative, yaxis: "y2", line: { color: PALETTE[1], width: 2 }, hovertemplate: "%{y:.1f}%<extra></extra>" },
  ], {
    title,
    xaxis: { type: "category", tickangle: -30 },
    yaxis: { title: { text: valueTitle } },
    yaxis2: { overlaying: "y", side: "right", range: [0, 105], ticksuffix: "%", showgrid: false },
    margin: { l: 60, r: 56, t: title ? 48 : 16, b: 96 },
  });
}

/** One or more time series; x values are ISO dates or timestamps. */
export function lineTrend(el, { series, title, yTitle, percent = false }) {
  return draw(el, series.map((s, i) => ({
    type: "scatter", mode: s.x.length > 60 ? "lines" : "lines+markers", name: s.name, x: s.x, y: s.y,
    line: { width: 2, color: s.color || PALETTE[i % PALETTE.length] },
    hovertemplate: `%{x}: %{y:,.2f}${percent ? "%" : ""}<extra>${s.name ?? ""}</extra>`,
  })), {
    title,
    xaxis: { type: "date" },
    yaxis: { title: { text: yTitle }, ticksuffix: percent ? "%" : "" },
    showlegend: series.length > 1,
  });
}

/** Stacked (or grouped) bars of several series over shared categories; `onClick(x)` is
 *  called with the clicked category (cross-filtering). */
export function stackedBars(el, { x, series, title, yTitle, barmode = "stack", percent = false, categoryAxis = "category", onClick }) {
  const done = draw(el, series.map((s, i) => ({
    type: "bar", name: s.name, x, y: s.y, marker: { color: s.color || PALETTE[i % PALETTE.length] },
    yaxis: s.axis === 2 ? "y2" : "y",
    hovertemplate: `%{x}: %{y:,.2f}${percent ? "%" : ""}<extra>${s.name ?? ""}</extra>`,
  })), {
    title, barmode,
    xaxis: { type: categoryAxis },
    yaxis: { title: { text: yTitle }, ticksuffix: percent ? "%" : "" },
    showlegend: series.length > 1,
  });
  return onClick ? done.then(() => onPointClick(el, onClick)) : done;
}

/** Bars and lines over dates (bars on the left axis, lines on a right axis); `onClick(x)`
 *  receives the clicked date. */
export function barLineTrend(el, { x, bars = [], lines = [], title, yTitle, y2Title, onClick }) {
  const traces = [
    ...bars.map((s, i) => ({ type: "bar", name: s.name, x, y: s.y, marker: { color: s.color || PALETTE[i % PALETTE.length] },
                             hovertemplate: `%{x}: %{y:,}<extra>${s.name}</extra>` })),
    ...lines.map((s, i) => ({ type: "scatter", mode: x.length > 60 ? "lines" : "lines+markers", name: s.name, x, y: s.y,
                              yaxis: "y2", line: { width: 2, color: s.color || PALETTE[(bars.length + i) % PALETTE.length] },
                              hovertemplate: `%{x}: %{y:,}<extra>${s.name}</extra>` })),
  ];
  const done = draw(el, traces, {
    title, barmode: "group",
    xaxis: { type: "date" },
    yaxis: { title: { text: yTitle } },
    yaxis2: { title: { text: y2Title }, overlaying: "y", side: "right", showgrid: false, rangemode: "tozero" },
    showlegend: true,
  });
  return onClick ? done.then(() => onPointClick(el, onClick)) : done;
}

/** A heatmap (rows × columns of values); `onClick(x, y)` gets the clicked cell. */
export function heatmap(el, { x, y, z, title, colorTitle, percent = false, onClick }) {
  const done = draw(el, [{
    type: "heatmap", x, y, z, colorscale: "RdYlGn", zmin: percent ? 0 : undefined, zmax: percent ? 100 : undefined,
    colorbar: { title: { text: colorTitle }, ticksuffix: percent ? "%" : "" },
    hovertemplate: `%{y} · %{x}: %{z:.1f}${percent ? "%" : ""}<extra></extra>`, xgap: 1, ygap: 1,
  }], {
    title,
    xaxis: { type: "category" },
    yaxis: { type: "category", autorange: "reversed" },
    margin: { l: 110, r: 24, t: title ? 48 : 16, b: 56 },
  });
  return onClick ? done.then(() => onPointClick(el, onClick)) : done;
}

/** Call `handler(x, y)` when a point of the chart in `el` is clicked (once per element). */
export function onPointClick(el, handler) {
  el.__mesdashClick = handler;
  if (!el.__mesdashClickBound) {
    el.__mesdashClickBound = true;
    el.on("plotly_click", (event) => {
      const point = event?.points?.[0];
      if (point && el.__mesdashClick) el.__mesdashClick(point.x, point.y);
    });
  }
}
