//! Charts as inline SVG: lines, stacked areas and bars, with axes, a legend and interval bands.
//! The SVG needs no script and no external file, so it shows in mail clients and offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::figures::Number;
use super::model::ChartKind;
use super::output::{ChartOutput, SeriesRole};
use super::period::{Zone, format_short};
use super::units::format_value;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// Colour-blind friendly (Okabe-Ito), then darker repeats.
const COLOURS: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F",
];

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "Nice" axis steps: 1, 2 or 5 times a power of ten.
fn nice_step(range: f64, ticks: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / ticks;
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

/// The chart as an `<svg>` element, or a note when there is nothing to draw.
pub(crate) fn chart_svg(chart: &ChartOutput, zone: &Zone) -> String {
    let drawable = chart
        .series
        .iter()
        .any(|s| s.points.iter().any(|(_, v)| v.is_some()));
    if !drawable {
        return "<p class=\"empty\">No data in this period.</p>".to_string();
    }
    let has_time_axis = chart.series.iter().any(|s| s.points.len() > 1);
    if chart.chart == ChartKind::Bar && !has_time_axis {
        return category_bars(chart);
    }
    time_chart(chart, zone)
}

/// One bar per series (a result without a time axis).
fn category_bars(chart: &ChartOutput) -> String {
    let bars: Vec<(String, f64)> = chart
        .series
        .iter()
        .filter_map(|s| {
            s.points
                .first()
                .and_then(|(_, v)| *v)
                .map(|v| (s.label.clone(), v))
        })
        .collect();
    let row_height = 22.0;
    let height = TOP + BOTTOM + row_height * bars.len() as f64;
    let max = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
    let label_width = 220.0;
    let plot_width = WIDTH - label_width - 120.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(&chart.title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = TOP + row_height * i as f64;
        let width = if max > 0.0 {
            value / max * plot_width
        } else {
            0.0
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\" fill=\"#333\">{}</text><rect x=\"{label_width}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#333\">{}</text>",
            label_width - 6.0,
            y + 15.0,
            escape(label),
            y + 3.0,
            width.max(0.0),
            row_height - 6.0,
            colour(i),
            label_width + width.max(0.0) + 6.0,
            y + 15.0,
            escape(&format_value(Number::Float(*value), chart.unit))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn time_chart(chart: &ChartOutput, zone: &Zone) -> String {
    let stacked = matches!(chart.chart, ChartKind::Area | ChartKind::Bar);
    let lines: Vec<usize> = chart
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.role == SeriesRole::Line)
        .map(|(i, _)| i)
        .collect();
    // Stacked charts add the lines of each time bucket; the top of each layer is drawn.
    let mut stacked_tops: Vec<Vec<(i64, f64, f64)>> = Vec::new();
    if stacked {
        let mut base: BTreeMap<i64, f64> = BTreeMap::new();
        for &i in &lines {
            let mut layer = Vec::new();
            for (time, value) in &chart.series[i].points {
                let bottom = base.get(time).copied().unwrap_or(0.0);
                let top = bottom + value.unwrap_or(0.0);
                base.insert(*time, top);
                layer.push((*time, bottom, top));
            }
            stacked_tops.push(layer);
        }
    }
    let mut times: Vec<i64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|(t, _)| *t))
        .collect();
    times.sort_unstable();
    let (Some(&t_min), Some(&t_max)) = (times.first(), times.last()) else {
        return "<p class=\"empty\">No data in this period.</p>".to_string();
    };
    let mut values: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|(_, v)| *v))
        .collect();
    values.extend(stacked_tops.iter().flatten().map(|(_, _, top)| *top));
    let mut v_min = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let mut v_max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !v_max.is_finite() || v_max <= v_min {
        v_max = v_min + 1.0;
    }
    let step = nice_step(v_max - v_min, 4.0);
    v_min = (v_min / step).floor() * step;
    v_max = (v_max / step).ceil() * step;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let span = (t_max - t_min).max(1) as f64;
    let x = |t: i64| LEFT + (t - t_min) as f64 / span * plot_width;
    let y = |v: f64| TOP + (1.0 - (v - v_min) / (v_max - v_min)) * plot_height;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(&chart.title)
    );
    // Horizontal grid lines with value labels.
    let mut tick = v_min;
    let mut guard = 0;
    while tick <= v_max + step / 2.0 && guard < 20 {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">{}</text>",
            WIDTH - RIGHT,
            y(tick),
            y(tick),
            LEFT - 6.0,
            y(tick) + 4.0,
            escape(&format_value(Number::Float(tick), chart.unit))
        );
        tick += step;
        guard += 1;
    }
    // Time labels: five, evenly spaced.
    for k in 0..5 {
        let t = t_min + ((t_max - t_min) as f64 * f64::from(k) / 4.0) as i64;
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-size=\"11\" fill=\"#555\">{}</text>",
            x(t),
            HEIGHT - 8.0,
            escape(&format_short(t, zone))
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>",
        WIDTH - RIGHT,
        TOP + plot_height,
        TOP + plot_height
    );
    // Interval bands: a `_lower` series and the `_upper` series after it.
    for (i, series) in chart.series.iter().enumerate() {
        if series.role != SeriesRole::Lower {
            continue;
        }
        let Some(upper) = chart.series[i + 1..]
            .iter()
            .find(|s| s.role == SeriesRole::Upper && s.tags == series.tags)
        else {
            continue;
        };
        let mut path = String::new();
        for (t, v) in upper.points.iter().filter_map(|(t, v)| v.map(|v| (*t, v))) {
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if path.is_empty() { "M" } else { "L" },
                x(t),
                y(v)
            );
        }
        for (t, v) in series
            .points
            .iter()
            .rev()
            .filter_map(|(t, v)| v.map(|v| (*t, v)))
        {
            let _ = write!(path, "L{:.1},{:.1} ", x(t), y(v));
        }
        if !path.is_empty() {
            let _ = write!(
                svg,
                "<path d=\"{path}Z\" fill=\"#999\" fill-opacity=\"0.25\" stroke=\"none\"/>"
            );
        }
    }
    let bucket_width = if times.len() > 1 {
        let mut distinct = times.clone();
        distinct.dedup();
        (plot_width / distinct.len().max(1) as f64 * 0.8).max(1.0)
    } else {
        8.0
    };
    for (layer_index, &i) in lines.iter().enumerate() {
        let series = &chart.series[i];
        let stroke = colour(layer_index);
        if stacked {
            let Some(layer) = stacked_tops.get(layer_index) else {
                continue;
            };
            if chart.chart == ChartKind::Bar {
                for (t, bottom, top) in layer {
                    let _ = write!(
                        svg,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{stroke}\"/>",
                        x(*t) - bucket_width / 2.0,
                        y(*top),
                        bucket_width,
                        (y(*bottom) - y(*top)).max(0.0)
                    );
                }
            } else {
                let mut path = String::new();
                for (t, _, top) in layer {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if path.is_empty() { "M" } else { "L" },
                        x(*t),
                        y(*top)
                    );
                }
                for (t, bottom, _) in layer.iter().rev() {
                    let _ = write!(path, "L{:.1},{:.1} ", x(*t), y(*bottom));
                }
                if !path.is_empty() {
                    let _ = write!(
                        svg,
                        "<path d=\"{path}Z\" fill=\"{stroke}\" fill-opacity=\"0.55\" stroke=\"{stroke}\" stroke-width=\"1\"/>"
                    );
                }
            }
        } else {
            // Gaps (null values) break the line.
            let mut path = String::new();
            let mut pen_down = false;
            for (t, v) in &series.points {
                match v {
                    Some(v) => {
                        let _ = write!(
                            path,
                            "{}{:.1},{:.1} ",
                            if pen_down { "L" } else { "M" },
                            x(*t),
                            y(*v)
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            let dash = if series.column == "trend" || series.column == "forecast" {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            };
            if series.points.iter().filter(|(_, v)| v.is_some()).count() == 1
                && let Some((t, Some(v))) = series.points.iter().find(|(_, v)| v.is_some())
            {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{stroke}\"/>",
                    x(*t),
                    y(*v)
                );
            }
            let _ = write!(
                svg,
                "<path d=\"{path}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.6\"{dash}/>"
            );
        }
    }
    svg.push_str("</svg>");
    // The legend is HTML next to the SVG, so long labels wrap.
    let mut legend = String::from("<div class=\"legend\">");
    for (layer_index, &i) in lines.iter().enumerate() {
        let _ = write!(
            legend,
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(layer_index),
            escape(&chart.series[i].label)
        );
    }
    if chart.series.iter().any(|s| s.role == SeriesRole::Lower) {
        legend.push_str("<span><i style=\"background:#ccc\"></i>95 % interval</span>");
    }
    legend.push_str("</div>");
    svg + &legend
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::output::ChartSeries;

    fn chart(kind: ChartKind, series: Vec<ChartSeries>) -> ChartOutput {
        ChartOutput {
            title: "t <&>".into(),
            description: String::new(),
            chart: kind,
            unit: crate::reports::model::Unit::Usd,
            queries: Vec::new(),
            series,
            error: None,
            omitted_series: 0,
        }
    }

    fn line(label: &str, role: SeriesRole, points: Vec<(i64, Option<f64>)>) -> ChartSeries {
        ChartSeries {
            label: label.into(),
            tags: BTreeMap::new(),
            column: label.into(),
            role,
            points,
        }
    }

    #[test]
    fn charts_are_escaped_svg_with_one_path_per_line_and_a_band_per_interval() {
        let points = vec![
            (0, Some(1.0)),
            (3_600_000_000_000, None),
            (7_200_000_000_000, Some(3.0)),
        ];
        let svg = chart_svg(
            &chart(
                ChartKind::Line,
                vec![
                    line("cost <a>", SeriesRole::Line, points.clone()),
                    line("forecast_lower", SeriesRole::Lower, points.clone()),
                    line("forecast_upper", SeriesRole::Upper, points),
                ],
            ),
            &Zone::utc(),
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("aria-label=\"t &lt;&amp;&gt;\""));
        assert!(svg.contains("cost &lt;a&gt;"));
        assert_eq!(
            svg.matches("fill-opacity=\"0.25\"").count(),
            1,
            "one interval band"
        );
        // The null value splits the line into two pieces.
        assert_eq!(
            svg.matches(" M").count() + usize::from(svg.contains("d=\"M")),
            2,
            "{svg}"
        );
    }

    #[test]
    fn charts_without_data_say_so() {
        let svg = chart_svg(
            &chart(
                ChartKind::Area,
                vec![line("x", SeriesRole::Line, vec![(0, None)])],
            ),
            &Zone::utc(),
        );
        assert!(svg.contains("No data"));
    }
}
