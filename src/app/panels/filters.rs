//! Filter bank browser: a sortable table of every learned filter, the selected filter's kernel,
//! window and magnitude response (learned and initial band edges drawn together), and an overlay
//! of all first-block responses with their summed response. A log-Mel/MFCC member shows its
//! fixed mel bands the same way ([`super::fixed_bank`]).

use std::path::PathBuf;

use eframe::egui::{self, Color32, RichText, Ui};
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, VLine};

use super::fixed_bank::FixedBankPanel;
use crate::app::context::ViewContext;
use crate::app::session::{Loaded, MemberView};
use crate::dsp::kernel::{hz_to_mel, mel_to_hz};
use crate::explain::FilterInfo;

/// Points of each magnitude response.
const RESPONSE_POINTS: usize = 512;

/// Frequency axis of the response plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrequencyAxis {
    Linear,
    Log,
    Mel,
}

impl FrequencyAxis {
    pub fn to_axis(self, hz: f64) -> f64 {
        match self {
            Self::Linear => hz,
            Self::Log => hz.max(1.0).log10(),
            Self::Mel => hz_to_mel(hz),
        }
    }
    pub fn to_hz(self, x: f64) -> f64 {
        match self {
            Self::Linear => x,
            Self::Log => 10f64.powf(x),
            Self::Mel => mel_to_hz(x),
        }
    }

    /// `(hz, db)` as plot points on this axis, levels below `floor_db` drawn at it; 0 Hz (no
    /// place on a log axis) and non-finite levels (a band with no energy anywhere) are left out.
    pub fn points(self, hz: &[f64], db: &[f64], floor_db: f64) -> Vec<[f64; 2]> {
        hz.iter()
            .zip(db)
            .filter(|(h, d)| d.is_finite() && (self != Self::Log || **h > 0.0))
            .map(|(&h, &d)| [self.to_axis(h), d.max(floor_db)])
            .collect()
    }

    /// Tick labels in Hz whatever the axis.
    pub fn tick_formatter(self) -> impl Fn(egui_plot::GridMark, &std::ops::RangeInclusive<f64>) -> String {
        move |m, _| format!("{:.0}", self.to_hz(m.value))
    }

    /// The "frequency axis: linear / log / mel" choice.
    pub fn selector(ui: &mut Ui, axis: &mut Self) {
        ui.label("frequency axis:");
        ui.selectable_value(axis, Self::Linear, "linear");
        ui.selectable_value(axis, Self::Log, "log");
        ui.selectable_value(axis, Self::Mel, "mel");
    }
}

/// Table columns, sortable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Index,
    FLow,
    FHigh,
    Centre,
    Bandwidth,
    Drift,
}

const COLUMNS: [(Column, &str); 6] = [
    (Column::Index, "#"),
    (Column::FLow, "f_low Hz"),
    (Column::FHigh, "f_high Hz"),
    (Column::Centre, "centre Hz"),
    (Column::Bandwidth, "bandwidth Hz"),
    (Column::Drift, "drift Hz"),
];

/// Row order of `filters` sorted by `column`.
pub fn sorted_rows(filters: &[FilterInfo], column: Column, ascending: bool) -> Vec<usize> {
    let key = |f: &FilterInfo, i: usize| match column {
        Column::Index => i as f64,
        Column::FLow => f.f_low_hz,
        Column::FHigh => f.f_high_hz,
        Column::Centre => f.centre_hz(),
        Column::Bandwidth => f.bandwidth_hz(),
        Column::Drift => f.drift_hz(),
    };
    let mut rows: Vec<usize> = (0..filters.len()).collect();
    rows.sort_by(|&a, &b| key(&filters[a], a).total_cmp(&key(&filters[b], b)));
    if !ascending {
        rows.reverse();
    }
    rows
}

/// `10 log10(sum_i 10^(db_i / 10))`: the power sum of several responses on one grid.
pub fn summed_response_db(responses: &[Vec<f64>]) -> Vec<f64> {
    let n = responses.first().map(|r| r.len()).unwrap_or(0);
    (0..n)
        .map(|k| {
            10.0 * responses
                .iter()
                .map(|r| 10f64.powf(r[k] / 10.0))
                .sum::<f64>()
                .max(1e-30)
                .log10()
        })
        .collect()
}

pub struct FiltersPanel {
    sort: Column,
    ascending: bool,
    axis: FrequencyAxis,
    /// Responses of every filter (dB) for the model at `cached_for`.
    responses: Vec<(Vec<f64>, Vec<f64>)>,
    cached_for: Option<PathBuf>,
    /// The mel bands of a log-Mel/MFCC member, browsed instead of learned filters.
    fixed: FixedBankPanel,
}

impl Default for FiltersPanel {
    fn default() -> Self {
        Self {
            sort: Column::Centre,
            ascending: true,
            axis: FrequencyAxis::Linear,
            responses: Vec::new(),
            cached_for: None,
            fixed: FixedBankPanel::default(),
        }
    }
}

impl FiltersPanel {
    pub fn ui(&mut self, ui: &mut Ui, view: &mut ViewContext, data: &Loaded) {
        let Some(model) = &data.model else {
            ui.label("no model loaded");
            return;
        };
        if model.is_ensemble() {
            // Each member learned its own filters: they are browsed one member at a time.
            ui.horizontal(|ui| {
                let label = ui.label(format!("{} members; filters of", model.members.len()));
                let selected = model.member(view.member).label();
                // Named by the label before it, for screen readers and UI tests alike.
                egui::ComboBox::from_id_salt("member")
                    .selected_text(selected)
                    .show_ui(ui, |ui| {
                        for (i, m) in model.members.iter().enumerate() {
                            ui.selectable_value(&mut view.member, i, m.label());
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
        }
        let model = model.member(view.member);
        if model.filters.is_empty() {
            // A log-Mel/MFCC member learned no filters; its fixed mel bands stand in their place.
            let height = ui.available_height();
            if !self.fixed.ui(ui, model, &mut self.axis, height) {
                ui.label(format!("{} has no filters to browse.", model.card.name));
            }
            return;
        }
        self.cache(model);
        if view.selected_filter.is_none_or(|i| i >= model.filters.len()) {
            view.selected_filter = model.first_block_by_centre().first().copied();
        }
        let selected = view.selected_filter.unwrap_or(0);
        // The table shows one block; a selection made elsewhere brings its block along.
        let mut block = model.filters[selected].block;
        let blocks = model.filters.iter().map(|f| f.block).max().unwrap_or(0) + 1;
        ui.horizontal(|ui| {
            if blocks > 1 {
                ui.label("block:");
                for b in 0..blocks {
                    ui.selectable_value(&mut block, b, format!("{}", b + 1));
                }
                ui.separator();
            }
            FrequencyAxis::selector(ui, &mut self.axis);
            ui.separator();
            let f = &model.filters[selected];
            ui.label(
                RichText::new(format!(
                    "block {} filter {}{}: {:.1}-{:.1} Hz (initially {:.1}-{:.1} Hz)",
                    f.block + 1,
                    f.filter,
                    if f.block > 0 {
                        format!(" ch {}", f.channel)
                    } else {
                        String::new()
                    },
                    f.f_low_hz,
                    f.f_high_hz,
                    f.init_f_low_hz,
                    f.init_f_high_hz
                ))
                .strong(),
            );
        });
        if block != model.filters[selected].block {
            view.selected_filter = (0..model.filters.len()).find(|&i| model.filters[i].block == block);
        }
        let height = ui.available_height();
        ui.columns(2, |cols| {
            self.table(&mut cols[0], view, model, height);
            self.plots(&mut cols[1], view, model, height);
        });
    }

    fn cache(&mut self, model: &MemberView) {
        if self.cached_for.as_ref() == Some(&model.path) && self.responses.len() == model.filters.len() {
            return;
        }
        self.responses = model
            .filters
            .iter()
            .map(|f| f.frequency_response(model.taps_of(f), RESPONSE_POINTS))
            .collect();
        self.cached_for = Some(model.path.clone());
    }

    fn table(&mut self, ui: &mut Ui, view: &mut ViewContext, model: &MemberView, height: f32) {
        let block = view.selected_filter.map(|i| model.filters[i].block).unwrap_or(0);
        let rows: Vec<usize> = sorted_rows(&model.filters, self.sort, self.ascending)
            .into_iter()
            .filter(|&i| model.filters[i].block == block)
            .collect();
        egui::ScrollArea::both()
            .id_salt("filter-table")
            .max_height(height)
            .show(ui, |ui| {
                egui::Grid::new("filter-grid").striped(true).show(ui, |ui| {
                    for (column, name) in COLUMNS {
                        let arrow = match (self.sort == column, self.ascending) {
                            (true, true) => " ^",
                            (true, false) => " v",
                            _ => "",
                        };
                        if ui.button(format!("{name}{arrow}")).clicked() {
                            if self.sort == column {
                                self.ascending = !self.ascending;
                            } else {
                                self.sort = column;
                                self.ascending = true;
                            }
                        }
                    }
                    ui.label("window phi");
                    ui.end_row();
                    for &i in &rows {
                        let f = &model.filters[i];
                        let selected = view.selected_filter == Some(i);
                        // Filters of later blocks read one input channel each: "filter.channel".
                        let label = if f.block > 0 {
                            format!("{}.{}", f.filter, f.channel)
                        } else {
                            format!("{}", f.filter)
                        };
                        if ui.selectable_label(selected, label).clicked() {
                            view.selected_filter = Some(i);
                        }
                        ui.label(format!("{:.1}", f.f_low_hz));
                        ui.label(format!("{:.1}", f.f_high_hz));
                        ui.label(format!("{:.1}", f.centre_hz()));
                        ui.label(format!("{:.1}", f.bandwidth_hz()));
                        ui.label(format!("{:.2}", f.drift_hz()));
                        let phi: Vec<String> = f.window.iter().map(|p| format!("{p:.3}")).collect();
                        ui.label(phi.join(", "));
                        ui.end_row();
                    }
                });
            });
    }

    fn plots(&mut self, ui: &mut Ui, view: &mut ViewContext, model: &MemberView, height: f32) {
        let selected = view.selected_filter.unwrap_or(0).min(model.filters.len() - 1);
        let f = &model.filters[selected];
        let taps = model.taps_of(f);
        let plot_h = (height / 3.0 - 8.0).max(60.0);
        let axis = self.axis;
        ui.horizontal(|ui| {
            let w = ui.available_width() / 2.0 - 4.0;
            let ms_per_tap = 1000.0 / f.sample_rate_hz;
            let centre = (taps / 2) as f64;
            // Tap k of a centred kernel sits at (k - centre) taps from its middle.
            let in_ms = |values: &[f64]| -> Vec<[f64; 2]> {
                values
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| [(k as f64 - centre) * ms_per_tap, v])
                    .collect()
            };
            let kernel = in_ms(&f.kernel(taps));
            Plot::new("kernel")
                .width(w)
                .height(plot_h)
                .x_axis_label("time (ms)")
                .y_axis_label("kernel")
                .show(ui, |p| {
                    p.line(Line::new("kernel", PlotPoints::new(kernel)).color(Color32::LIGHT_BLUE))
                });
            let window = in_ms(&f.window_samples(taps));
            let init = in_ms(&crate::dsp::kernel::generalized_cosine_window(
                &f.init_window,
                taps,
            ));
            Plot::new("window")
                .width(w)
                .height(plot_h)
                .legend(Legend::default())
                .x_axis_label("time (ms)")
                .y_axis_label("window")
                .show(ui, |p| {
                    p.line(Line::new("learned window", PlotPoints::new(window)).color(Color32::LIGHT_GREEN));
                    p.line(
                        Line::new("initial window", PlotPoints::new(init))
                            .color(Color32::GRAY)
                            .style(LineStyle::dashed_loose()),
                    );
                });
        });
        let (hz, db) = &self.responses[selected];
        let to_points = |hz: &[f64], db: &[f64]| axis.points(hz, db, -120.0);
        let edges = [
            (
                f.f_low_hz,
                f.f_high_hz,
                Color32::from_rgb(255, 200, 80),
                LineStyle::Solid,
                "learned band",
            ),
            (
                f.init_f_low_hz,
                f.init_f_high_hz,
                Color32::GRAY,
                LineStyle::dashed_loose(),
                "initial band",
            ),
        ];
        Plot::new("response")
            .height(plot_h)
            .legend(Legend::default())
            .x_axis_label("frequency (Hz)")
            .y_axis_label("|H(f)| dB")
            .x_axis_formatter(axis.tick_formatter())
            .include_y(-80.0)
            .include_y(5.0)
            .show(ui, |p| {
                p.line(
                    Line::new("selected filter", PlotPoints::new(to_points(hz, db)))
                        .color(Color32::LIGHT_BLUE),
                );
                for (lo, hi, colour, style, name) in edges {
                    p.vline(
                        VLine::new(name, axis.to_axis(lo.max(1.0)))
                            .color(colour)
                            .style(style),
                    );
                    p.vline(VLine::new(name, axis.to_axis(hi)).color(colour).style(style));
                }
            });
        // Overlay of the selected filter's block, the summed response, the selection highlighted.
        let block = f.block;
        // Block 1: every filter. Later blocks: the kernels of the selected output filter, one per
        // input channel (all of them would be thousands of curves).
        let shown: Vec<usize> = (0..model.filters.len())
            .filter(|&i| {
                let g = &model.filters[i];
                g.block == block && (block == 0 || g.filter == f.filter)
            })
            .collect();
        let summed = summed_response_db(
            &shown
                .iter()
                .map(|&i| self.responses[i].1.clone())
                .collect::<Vec<_>>(),
        );
        let block_hz = self.responses[shown[0]].0.clone();
        let response = Plot::new("overlay")
            .height(plot_h)
            .legend(Legend::default())
            .x_axis_label(format!("block {} responses, frequency (Hz)", block + 1))
            .y_axis_label("dB")
            .x_axis_formatter(axis.tick_formatter())
            .include_y(-60.0)
            .show(ui, |p| {
                for &i in &shown {
                    if i != selected {
                        let (h, d) = &self.responses[i];
                        p.line(
                            Line::new("all filters", PlotPoints::new(to_points(h, d)))
                                .color(Color32::from_gray(90))
                                .width(0.5)
                                .allow_hover(false),
                        );
                    }
                }
                p.line(
                    Line::new("summed (power)", PlotPoints::new(to_points(&block_hz, &summed)))
                        .color(Color32::from_rgb(255, 120, 120))
                        .width(1.5),
                );
                p.line(
                    Line::new("selected filter", PlotPoints::new(to_points(hz, db)))
                        .color(Color32::LIGHT_BLUE)
                        .width(2.0),
                );
                p.pointer_coordinate()
            });
        // Clicking the overlay selects the filter of that block whose band is nearest.
        if response.response.clicked()
            && let Some(pos) = response.inner
        {
            let hz = axis.to_hz(pos.x);
            if let Some(&best) = shown.iter().min_by(|&&a, &&b| {
                let d = |i: usize| (model.filters[i].centre_hz() - hz).abs();
                d(a).total_cmp(&d(b))
            }) {
                view.selected_filter = Some(best);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summing_two_equal_responses_adds_three_db() {
        let s = summed_response_db(&[vec![0.0, -10.0], vec![0.0, -10.0]]);
        assert!((s[0] - 10.0 * 2f64.log10()).abs() < 1e-9);
        assert!((s[1] - (-10.0 + 10.0 * 2f64.log10())).abs() < 1e-9);
    }

    #[test]
    fn axes_round_trip() {
        for axis in [FrequencyAxis::Linear, FrequencyAxis::Log, FrequencyAxis::Mel] {
            let x = axis.to_axis(440.0);
            assert!((axis.to_hz(x) - 440.0).abs() < 1e-6, "{axis:?}");
        }
    }
}
