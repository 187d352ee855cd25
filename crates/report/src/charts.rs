//! Server-rendered SVG charts of a report, for the operations console.
//!
//! Drawn with plotters' SVG backend and no font engine (plotters' "naive" text metrics: no
//! system font, no freetype or fontconfig): text is emitted as SVG `<text>` elements that the
//! browser lays out. The output is meant to be inlined in a page with a strict CSP: no script,
//! no `style` attribute or element, no external reference (only presentation attributes such as
//! `fill` and `stroke`); it starts with an `<svg>` element carrying `role="img"`, an
//! `aria-label` and a `<title>`.

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::compute::DailyReport;
use crate::export::grouped;
use crate::{Lang, ReportError, Result};

/// The size of every chart, in SVG pixels (the page scales it).
pub const CHART_SIZE: (u32, u32) = (800, 360);

const BAR: RGBColor = RGBColor(0x00, 0x5f, 0x99);
const SECOND: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const FONT: &str = "sans-serif";

fn chart_error(error: impl std::fmt::Display) -> ReportError {
    ReportError::Chart(error.to_string())
}

/// Draws with `draw` on a fresh SVG, then makes it safe to inline (see the module docs).
fn render(
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        draw(&root)?;
        root.present().map_err(chart_error)?;
    }
    finish(&svg, title)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds the accessible name, and refuses anything a strict CSP or an inlining page would not
/// take (plotters writes none of it today; this keeps it true after an upgrade).
fn finish(svg: &str, title: &str) -> Result<String> {
    let Some(start) = svg.find("<svg") else {
        return Err(chart_error("no <svg> element"));
    };
    let Some(end) = svg[start..].find('>').map(|end| start + end) else {
        return Err(chart_error("unterminated <svg> element"));
    };
    let title = escape(title);
    let mut out = String::with_capacity(svg.len() + 2 * title.len() + 64);
    out.push_str(&svg[start..end]);
    out.push_str(&format!(
        " role=\"img\" aria-label=\"{title}\">\n<title>{title}</title>"
    ));
    out.push_str(&svg[end + 1..]);
    // Only the markup: text content is escaped by plotters (no '<' in it), so every '<' opens
    // a tag; a site's name cannot look like an attribute here.
    let markup: String = out
        .split('<')
        .skip(1)
        .map(|part| {
            part.split('>')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect::<Vec<_>>()
        .join("\n");
    for forbidden in [
        "script",
        "style",
        "href",
        "url(",
        "image",
        "foreignobject",
        "iframe",
    ] {
        if markup.contains(forbidden) {
            return Err(chart_error(format!("{forbidden:?} in the SVG")));
        }
    }
    let handler = markup.match_indices(" on").any(|(index, _)| {
        let rest = &markup[index + 3..];
        let name = rest.chars().take_while(char::is_ascii_alphabetic).count();
        name > 0 && rest[name..].starts_with('=')
    });
    if handler {
        return Err(chart_error("event handler attribute in the SVG"));
    }
    Ok(out)
}

/// Byte counts in one unit for an axis: (divisor, unit label).
fn byte_unit(max: u64, lang: Lang) -> (f64, &'static str) {
    let units: [(f64, &str, &str); 5] = [
        (1.0, "octets", "bytes"),
        (1e3, "Ko", "kB"),
        (1e6, "Mo", "MB"),
        (1e9, "Go", "GB"),
        (1e12, "To", "TB"),
    ];
    let mut chosen = units[0];
    for unit in units {
        #[allow(clippy::cast_precision_loss)]
        if max as f64 >= unit.0 {
            chosen = unit;
        }
    }
    (chosen.0, lang.pick(chosen.1, chosen.2))
}

/// A number for an axis label, without decimals when whole.
fn axis_number(value: f64, lang: Lang) -> String {
    if (value - value.round()).abs() < 1e-9 && value >= 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return grouped(value.round() as u64, lang);
    }
    let text = format!("{value:.1}");
    match lang {
        Lang::Fr => text.replace('.', ","),
        Lang::En => text,
    }
}

/// `dd/mm` of a report's day (the day itself if it does not parse).
fn short_day(report: &DailyReport) -> String {
    report.date().map_or_else(
        |_| report.day.clone(),
        |date| date.strftime("%d/%m").to_string(),
    )
}

/// A vertical bar chart over categories.
struct Bars<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    labels: &'a [String],
    values: &'a [f64],
    /// At most this many labels on the x axis.
    max_labels: usize,
}

fn bars(root: &DrawingArea<SVGBackend<'_>, Shift>, spec: &Bars<'_>, lang: Lang) -> Result<()> {
    let Bars {
        caption,
        x_desc,
        y_desc,
        labels,
        values,
        max_labels,
    } = *spec;
    let n = u32::try_from(labels.len()).map_err(chart_error)?.max(1);
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { max * 1.1 };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0_u32..n - 1).into_segmented(), 0.0_f64..top)
        .map_err(chart_error)?;
    let label_of = |value: &SegmentValue<u32>| match value {
        SegmentValue::CenterOf(index) => labels
            .get(usize::try_from(*index).unwrap_or(usize::MAX))
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .x_labels(labels.len().clamp(1, max_labels.max(1)))
        .x_label_formatter(&label_of)
        .y_label_formatter(&|value| axis_number(*value, lang))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .draw()
        .map_err(chart_error)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(BAR.filled())
                .margin(2)
                .data(
                    values
                        .iter()
                        .enumerate()
                        .map(|(index, &value)| (u32::try_from(index).unwrap_or(0), value)),
                ),
        )
        .map_err(chart_error)?;
    Ok(())
}

/// Chart 1: the most sessions live at once in each hour of the day.
pub fn concurrency_by_hour(report: &DailyReport, lang: Lang) -> Result<String> {
    let title = match lang {
        Lang::Fr => format!("Sessions simultanées par heure — {}", report.day),
        Lang::En => format!("Concurrent sessions per hour — {}", report.day),
    };
    let labels: Vec<String> = report
        .hours
        .iter()
        .map(|hour| hour.label.chars().take(2).collect())
        .collect();
    let values: Vec<f64> = report
        .hours
        .iter()
        .map(|hour| f64::from(hour.max_concurrent))
        .collect();
    render(&title, |root| {
        bars(
            root,
            &Bars {
                caption: &title,
                x_desc: lang.pick("Heure", "Hour"),
                y_desc: lang.pick("Sessions (max.)", "Sessions (max)"),
                labels: &labels,
                values: &values,
                max_labels: labels.len(),
            },
            lang,
        )
    })
}

/// Chart 2: the bandwidth of each site (and "other"), in one unit.
pub fn bandwidth_by_site(report: &DailyReport, lang: Lang) -> Result<String> {
    let title = match lang {
        Lang::Fr => format!("Bande passante par site — {}", report.day),
        Lang::En => format!("Bandwidth per site — {}", report.day),
    };
    let max = report
        .bandwidth_by_site
        .iter()
        .map(|site| site.bytes.total)
        .max()
        .unwrap_or(0);
    let (divisor, unit) = byte_unit(max, lang);
    let labels: Vec<String> = report
        .bandwidth_by_site
        .iter()
        .map(|site| site.label(lang))
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let values: Vec<f64> = report
        .bandwidth_by_site
        .iter()
        .map(|site| site.bytes.total as f64 / divisor)
        .collect();
    render(&title, |root| {
        bars(
            root,
            &Bars {
                caption: &title,
                x_desc: lang.pick("Site", "Site"),
                y_desc: unit,
                labels: &labels,
                values: &values,
                max_labels: labels.len(),
            },
            lang,
        )
    })
}

/// Chart 3: peak concurrent sessions and distinct users, day by day (e.g. 30 days).
pub fn trend_concurrency(reports: &[DailyReport], lang: Lang) -> Result<String> {
    let title = match (lang, reports.first(), reports.last()) {
        (Lang::Fr, Some(first), Some(last)) => format!(
            "Pic de sessions simultanées et utilisateurs distincts — du {} au {}",
            first.day, last.day
        ),
        (Lang::En, Some(first), Some(last)) => format!(
            "Peak concurrent sessions and distinct users — {} to {}",
            first.day, last.day
        ),
        (Lang::Fr, ..) => "Pic de sessions simultanées et utilisateurs distincts".to_owned(),
        (Lang::En, ..) => "Peak concurrent sessions and distinct users".to_owned(),
    };
    let labels: Vec<String> = reports.iter().map(short_day).collect();
    let peaks: Vec<u32> = reports
        .iter()
        .map(|report| report.peak_concurrent_sessions)
        .collect();
    let users: Vec<u32> = reports.iter().map(|report| report.distinct_users).collect();
    render(&title, |root| {
        let n = u32::try_from(labels.len()).map_err(chart_error)?.max(1);
        let max = peaks.iter().chain(&users).copied().max().unwrap_or(0);
        let top = (f64::from(max) * 1.1).max(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0_u32..n - 1).into_segmented(), 0.0_f64..top)
            .map_err(chart_error)?;
        let label_of = |value: &SegmentValue<u32>| match value {
            SegmentValue::CenterOf(index) => labels
                .get(usize::try_from(*index).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(labels.len().clamp(1, 10))
            .x_label_formatter(&label_of)
            .y_label_formatter(&|value| axis_number(*value, lang))
            .x_desc(lang.pick("Jour", "Day"))
            .label_style((FONT, 12))
            .draw()
            .map_err(chart_error)?;
        let point = |index: usize, value: u32| {
            (
                SegmentValue::CenterOf(u32::try_from(index).unwrap_or(0)),
                f64::from(value),
            )
        };
        let series = [
            (
                lang.pick("Pic de sessions simultanées", "Peak concurrent sessions"),
                &peaks,
                BAR,
            ),
            (
                lang.pick("Utilisateurs distincts", "Distinct users"),
                &users,
                SECOND,
            ),
        ];
        for (name, values, color) in series {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, &v)| point(i, v)),
                    color.stroke_width(2),
                ))
                .map_err(chart_error)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| Circle::new(point(i, v), 3, color.filled())),
                )
                .map_err(chart_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .label_font((FONT, 12))
            .draw()
            .map_err(chart_error)?;
        Ok(())
    })
}

/// Chart 4: the bandwidth of each day (e.g. 30 days), in one unit.
pub fn trend_bandwidth(reports: &[DailyReport], lang: Lang) -> Result<String> {
    let title = match (lang, reports.first(), reports.last()) {
        (Lang::Fr, Some(first), Some(last)) => {
            format!("Bande passante par jour — du {} au {}", first.day, last.day)
        }
        (Lang::En, Some(first), Some(last)) => {
            format!("Bandwidth per day — {} to {}", first.day, last.day)
        }
        (Lang::Fr, ..) => "Bande passante par jour".to_owned(),
        (Lang::En, ..) => "Bandwidth per day".to_owned(),
    };
    let max = reports
        .iter()
        .map(|report| report.bandwidth.total)
        .max()
        .unwrap_or(0);
    let (divisor, unit) = byte_unit(max, lang);
    let labels: Vec<String> = reports.iter().map(short_day).collect();
    #[allow(clippy::cast_precision_loss)]
    let values: Vec<f64> = reports
        .iter()
        .map(|report| report.bandwidth.total as f64 / divisor)
        .collect();
    render(&title, |root| {
        bars(
            root,
            &Bars {
                caption: &title,
                x_desc: lang.pick("Jour", "Day"),
                y_desc: unit,
                labels: &labels,
                values: &values,
                max_labels: 10,
            },
            lang,
        )
    })
}
