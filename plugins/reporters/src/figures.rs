//! The figures of `reporter/html`, drawn with plotters' SVG backend into strings: neurons per
//! layer per label (stacked bars), Δ against the random control per value and language (error
//! bars), the cross-value Δ heatmap per language, and the side effects' numbers (bars).
//!
//! Output is deterministic (integer pixel coordinates, no time or randomness). Text is escaped
//! by plotters' SVG backend. Each function returns `None` when there is nothing to draw.

use plotters::prelude::*;

use crate::results::{CellView, CrossView, SetView};

/// Width of every figure, pixels.
const WIDTH: u32 = 960;

type Drawn = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Drawn,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(root.clone())?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// `n` category segments on the x axis. plotters' segmented `a..b` has `b - a + 1` segments
/// (its key points are inclusive), so `0..n-1`; one category gets two segments, the second
/// empty, because a one-point range cannot be mapped.
fn segments(
    n: usize,
) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32> {
    (0..(n as i32 - 1).max(1)).into_segmented()
}

/// A y range that holds `lo..hi` and zero, padded by 10 %, never empty.
fn y_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let pad = ((hi - lo) * 0.1).max(1e-3);
    (lo - pad)..(hi + pad)
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
}

/// Neurons per layer, one stacked bar per layer, one colour per label.
///
/// # Errors
/// A plotters drawing error (message).
pub fn neurons_per_layer(sets: &[SetView], n_layers: usize) -> Result<Option<String>, String> {
    if sets.is_empty() || n_layers == 0 {
        return Ok(None);
    }
    let totals: Vec<u64> = (0..n_layers)
        .map(|l| {
            sets.iter()
                .map(|s| s.per_layer.get(l).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let ymax = totals.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let legend_cols = 6usize;
    let legend_rows = sets.len().div_ceil(legend_cols) as u32;
    let height = 380 + 20 * legend_rows;
    let out = svg((WIDTH, height), |root| {
        let (plot, legend) = root.split_vertically(height - 20 * legend_rows - 10);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(segments(n_layers), 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n_layers.min(40))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => i.to_string(),
                SegmentValue::Last => String::new(),
            })
            .x_desc("layer")
            .y_desc("neurons")
            .label_style(font(12))
            .draw()
            .map_err(err)?;
        let mut base = vec![0f64; n_layers];
        for (k, s) in sets.iter().enumerate() {
            let color = Palette99::pick(k);
            let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = (0..n_layers)
                .filter_map(|l| {
                    let n = s.per_layer.get(l).copied().unwrap_or(0) as f64;
                    (n > 0.0).then(|| {
                        let mut r = Rectangle::new(
                            [
                                (SegmentValue::Exact(l as i32), base[l]),
                                (SegmentValue::Exact(l as i32 + 1), base[l] + n),
                            ],
                            color.filled(),
                        );
                        // A gap between neighbouring layers' bars.
                        r.set_margin(0, 0, 3, 3);
                        base[l] += n;
                        r
                    })
                })
                .collect();
            chart.draw_series(bars).map_err(err)?;
        }
        // Legend below the plot, in rows of `legend_cols`.
        for (k, s) in sets.iter().enumerate() {
            let x = 60 + (k % legend_cols) as i32 * 150;
            let y = 4 + (k / legend_cols) as i32 * 20;
            legend
                .draw(&Rectangle::new(
                    [(x, y), (x + 12, y + 12)],
                    Palette99::pick(k).filled(),
                ))
                .map_err(err)?;
            legend
                .draw(&Text::new(s.label.clone(), (x + 18, y), font(13)))
                .map_err(err)?;
        }
        Ok(())
    })?;
    Ok(Some(out))
}

/// Δ of the targeted (first own-set) condition per value, with its 95 % CI when the document
/// has one, beside the mean Δ of the random controls with their min–max range; one panel for
/// `cells` (the cells of one language).
///
/// # Errors
/// A plotters drawing error (message).
pub fn delta_vs_random(cells: &[&CellView]) -> Result<Option<String>, String> {
    let n = cells.len();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut any = false;
    for c in cells {
        let own = c.primary_own();
        let vals = [
            own.and_then(|o| o.delta),
            own.and_then(|o| o.ci95).map(|x| x.0),
            own.and_then(|o| o.ci95).map(|x| x.1),
            c.random_mean(),
            c.random_range().map(|x| x.0),
            c.random_range().map(|x| x.1),
        ];
        for x in vals.into_iter().flatten() {
            any = true;
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    if n == 0 || !any {
        return Ok(None);
    }
    let out = svg((WIDTH, 400), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_top(36)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(segments(n), y_range(lo, hi))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => cells
                    .get(*i as usize)
                    .map_or_else(String::new, |c| c.shown.clone()),
                _ => String::new(),
            })
            .y_label_formatter(&|y| {
                if y.abs() < 1e-9 {
                    "0".to_owned()
                } else {
                    format!("{y:+.2}")
                }
            })
            .y_desc("Δ (edited − baseline)")
            .label_style(font(12))
            .draw()
            .map_err(err)?;
        // Zero line.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (SegmentValue::Exact(0), 0.0),
                    (SegmentValue::Exact(n as i32), 0.0),
                ],
                BLACK.stroke_width(1),
            )))
            .map_err(err)?;
        let own_color = RGBColor(200, 40, 40);
        let random_color = RGBColor(110, 110, 110);
        // Positions as fractions of a segment: plotters' SegmentValue has no sub-positions,
        // so map through the chart's coordinates to absolute pixels and draw on the root
        // area (whose origin is the image's).
        let area = chart.plotting_area();
        let at = |i: usize, frac: f64, y: f64| -> (i32, i32) {
            let (x0, yy) = area.map_coordinate(&(SegmentValue::Exact(i as i32), y));
            let (x1, _) = area.map_coordinate(&(SegmentValue::Exact(i as i32 + 1), y));
            (x0 + (f64::from(x1 - x0) * frac).round() as i32, yy)
        };
        for (i, c) in cells.iter().enumerate() {
            let own = c.primary_own();
            if let Some((l, h)) = own.and_then(|o| o.ci95) {
                whisker(&root, at(i, 0.35, l), at(i, 0.35, h), own_color)?;
            }
            if let Some(d) = own.and_then(|o| o.delta) {
                root.draw(&Circle::new(at(i, 0.35, d), 5, own_color.filled()))
                    .map_err(err)?;
            }
            if let Some((l, h)) = c.random_range() {
                whisker(&root, at(i, 0.65, l), at(i, 0.65, h), random_color)?;
            }
            if let Some(d) = c.random_mean() {
                root.draw(&Circle::new(
                    at(i, 0.65, d),
                    5,
                    random_color.stroke_width(2),
                ))
                .map_err(err)?;
            }
        }
        // Legend.
        let (w, _) = root.dim_in_pixel();
        let x = w as i32 - 330;
        root.draw(&Circle::new((x, 16), 5, own_color.filled()))
            .map_err(err)?;
        root.draw(&Text::new("targeted (95% CI)", (x + 10, 8), font(13)))
            .map_err(err)?;
        root.draw(&Circle::new((x + 150, 16), 5, random_color.stroke_width(2)))
            .map_err(err)?;
        root.draw(&Text::new("random (mean, range)", (x + 160, 8), font(13)))
            .map_err(err)?;
        Ok(())
    })?;
    Ok(Some(out))
}

fn whisker(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    a: (i32, i32),
    b: (i32, i32),
    color: RGBColor,
) -> Drawn {
    let style = color.stroke_width(2);
    area.draw(&PathElement::new(vec![a, b], style))
        .map_err(err)?;
    for p in [a, b] {
        area.draw(&PathElement::new(
            vec![(p.0 - 5, p.1), (p.0 + 5, p.1)],
            style,
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A diverging colour: red for negative, blue for positive, white at zero; `scale` > 0.
fn diverging(x: f64, scale: f64) -> RGBColor {
    let t = (x / scale).clamp(-1.0, 1.0);
    let fade = |c: u8, t: f64| (255.0 - (255.0 - f64::from(c)) * t).round() as u8;
    if t < 0.0 {
        RGBColor(fade(200, -t), fade(40, -t), fade(40, -t))
    } else {
        RGBColor(fade(40, t), fade(90, t), fade(200, t))
    }
}

/// The cross-value matrix of one language as a heatmap: rows ablated, columns evaluated,
/// colour = Δ, the value printed in each cell (grey hatch-free light cells where not
/// evaluated).
///
/// # Errors
/// A plotters drawing error (message).
pub fn cross_value_heatmap(m: &CrossView) -> Result<Option<String>, String> {
    let n = m.labels.len();
    if n == 0 {
        return Ok(None);
    }
    let scale = m
        .delta
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |a, x| a.max(x.abs()))
        .max(1e-9);
    let cell = (640 / n as i32).clamp(18, 60);
    let (left, top) = (150i32, 130i32);
    let size = (
        (left + cell * n as i32 + 40).max(400) as u32,
        (top + cell * n as i32 + 50) as u32,
    );
    let out = svg(size, |root| {
        root.draw(&Text::new("evaluated →", (left, 8), font(13)))
            .map_err(err)?;
        root.draw(&Text::new("ablated ↓", (8, top - 20), font(13)))
            .map_err(err)?;
        for (j, l) in m.labels.iter().enumerate() {
            let x = left + j as i32 * cell + cell / 2;
            root.draw(&Text::new(
                l.clone(),
                (x - 6, top - 6),
                font(12).transform(FontTransform::Rotate270),
            ))
            .map_err(err)?;
        }
        for (i, (label, row)) in m.labels.iter().zip(&m.delta).enumerate() {
            let y = top + i as i32 * cell;
            root.draw(&Text::new(label.clone(), (8, y + cell / 2 - 7), font(12)))
                .map_err(err)?;
            for j in 0..n {
                let x = left + j as i32 * cell;
                let d = row.get(j).copied().flatten();
                let fill = d.map_or(RGBColor(235, 235, 235), |d| diverging(d, scale));
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    WHITE.stroke_width(1),
                ))
                .map_err(err)?;
                if let (Some(d), true) = (d, cell >= 34) {
                    let t = format!("{d:+.2}");
                    root.draw(&Text::new(t, (x + 3, y + cell / 2 - 6), font(11)))
                        .map_err(err)?;
                }
            }
        }
        let y = top + cell * n as i32 + 16;
        root.draw(&Text::new(
            format!("colour scale: red = Δ −{scale:.3}, white = 0, blue = Δ +{scale:.3}"),
            (left, y),
            font(12),
        ))
        .map_err(err)?;
        Ok(())
    })?;
    Ok(Some(out))
}

/// Numbers of the side effects as horizontal bars from `origin` (0 for raw numbers, 1 for
/// ratios such as perplexity under an edit / baseline), labelled by their names; each bar
/// prints its value.
///
/// # Errors
/// A plotters drawing error (message).
pub fn side_effect_bars(values: &[(String, f64)], origin: f64) -> Result<Option<String>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    let scale = values
        .iter()
        .fold(0f64, |a, (_, x)| a.max((x - origin).abs()))
        .max(1e-12);
    let any_negative = values.iter().any(|(_, x)| *x < origin);
    let row = 24i32;
    let (left, right) = (300i32, WIDTH as i32 - 120);
    let zero = if any_negative {
        (left + right) / 2
    } else {
        left
    };
    let half = if any_negative {
        (right - left) / 2
    } else {
        right - left
    };
    let height = (row * values.len() as i32 + 30) as u32;
    let out = svg((WIDTH, height), |root| {
        for (i, (path, x)) in values.iter().enumerate() {
            let y = 10 + i as i32 * row;
            root.draw(&Text::new(path.clone(), (8, y + 3), font(12)))
                .map_err(err)?;
            let len = ((x - origin).abs() / scale * f64::from(half)).round() as i32;
            let (a, b) = if *x < origin {
                (zero - len, zero)
            } else {
                (zero, zero + len)
            };
            let color = if *x < origin {
                RGBColor(200, 40, 40)
            } else {
                RGBColor(40, 90, 200)
            };
            root.draw(&Rectangle::new(
                [(a, y + 2), (b.max(a + 1), y + row - 4)],
                color.filled(),
            ))
            .map_err(err)?;
            root.draw(&Text::new(format!("{x:.4}"), (right + 10, y + 3), font(12)))
                .map_err(err)?;
        }
        let bottom = 10 + row * values.len() as i32;
        root.draw(&PathElement::new(
            vec![(zero, 6), (zero, bottom)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        Ok(())
    })?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0, 1.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(-2.0, 1.0), RGBColor(200, 40, 40));
        assert_eq!(diverging(1.0, 1.0), RGBColor(40, 90, 200));
    }

    #[test]
    fn empty_inputs_draw_nothing() {
        assert_eq!(neurons_per_layer(&[], 4).unwrap(), None);
        assert_eq!(delta_vs_random(&[]).unwrap(), None);
        assert_eq!(side_effect_bars(&[], 0.0).unwrap(), None);
    }

    #[test]
    fn one_layer_and_one_cell_draw() {
        let sets = vec![SetView {
            label: "a".into(),
            n_neurons: Some(1),
            per_layer: vec![1],
        }];
        assert!(
            neurons_per_layer(&sets, 1)
                .unwrap()
                .unwrap()
                .contains("<rect")
        );
        let cell = crate::results::ResultsView::from_results(&serde_json::json!({
            "evaluation": {"cells": [{"value": "a", "language": "zh", "conditions": [
                {"condition": "targeted", "delta": -0.5, "ci95": [-0.6, -0.4]},
                {"condition": "random-1", "delta": 0.0},
            ]}]}
        }))
        .cells;
        let svg = delta_vs_random(&[&cell[0]]).unwrap().unwrap();
        assert!(svg.contains("<circle"));
    }

    #[test]
    fn bars_are_deterministic_svg() {
        let sets = vec![SetView {
            label: "a<b".into(),
            n_neurons: Some(3),
            per_layer: vec![1, 2],
        }];
        let a = neurons_per_layer(&sets, 2).unwrap().unwrap();
        assert_eq!(a, neurons_per_layer(&sets, 2).unwrap().unwrap());
        assert!(a.starts_with("<svg"), "{}", &a[..40]);
        assert!(a.contains("a&lt;b"), "label escaped");
        assert!(a.contains("<rect"));
    }
}
