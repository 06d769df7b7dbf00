//! The fixed front-end of a log-Mel or MFCC member, shown where a learned member's filter browser
//! would be: its mel bands as a table and their measured responses in dB with their power sum,
//! drawn like a learned block's overlay so that the two kinds of member can be compared.

use std::path::PathBuf;

use eframe::egui::{self, Color32, RichText, Ui};
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};

use super::filters::{FrequencyAxis, summed_response_db};
use crate::app::session::MemberView;
use crate::dsp::spectral::{mel_band_edges_hz, mel_band_responses_db};

/// Probe frequencies of each measured band response.
const RESPONSE_POINTS: usize = 1024;

#[derive(Default)]
pub struct FixedBankPanel {
    cached_for: Option<PathBuf>,
    /// What the front-end computes ([`crate::model::ModelConfig::fixed_front_end_summary`]).
    description: String,
    /// `[low, peak, high]` Hz per band.
    bands: Vec<[f64; 3]>,
    hz: Vec<f64>,
    /// Power response per band, dB re its peak.
    responses: Vec<Vec<f64>>,
    selected: usize,
}

impl FixedBankPanel {
    /// Draws `member`'s fixed filterbank; false (drawing nothing) when its front-end is learned.
    pub fn ui(&mut self, ui: &mut Ui, member: &MemberView, axis: &mut FrequencyAxis, height: f32) -> bool {
        if !self.cache(member) {
            return false;
        }
        self.selected = self.selected.min(self.bands.len().saturating_sub(1));
        ui.horizontal(|ui| {
            FrequencyAxis::selector(ui, axis);
            ui.separator();
            if let Some([lo, peak, hi]) = self.bands.get(self.selected) {
                ui.label(
                    RichText::new(format!(
                        "mel band {}: {lo:.1}-{hi:.1} Hz, peak {peak:.1} Hz (fixed)",
                        self.selected
                    ))
                    .strong(),
                );
            }
        });
        ui.label(RichText::new(format!("{}: {}", member.card.name, self.description)).small());
        let height = ui.available_height().min(height);
        ui.columns(2, |cols| {
            self.table(&mut cols[0], height);
            self.overlay(&mut cols[1], *axis, height);
        });
        true
    }

    /// Computes `member`'s bands, responses and description once per member; false for a
    /// learned front-end.
    fn cache(&mut self, member: &MemberView) -> bool {
        if self.cached_for.as_ref() == Some(&member.path) {
            return true;
        }
        let config = &member.card.config;
        let (Some((n_fft, _, n_mels, _)), Some(description)) =
            (config.mel_bank(), config.fixed_front_end_summary())
        else {
            return false;
        };
        let rate = config.sample_rate as f64;
        self.bands = mel_band_edges_hz(n_mels, rate);
        (self.hz, self.responses) = mel_band_responses_db(n_fft, n_mels, rate, RESPONSE_POINTS);
        self.description = description;
        self.cached_for = Some(member.path.clone());
        true
    }

    fn table(&mut self, ui: &mut Ui, height: f32) {
        egui::ScrollArea::both()
            .id_salt("mel-band-table")
            .max_height(height)
            .show(ui, |ui| {
                egui::Grid::new("mel-band-grid").striped(true).show(ui, |ui| {
                    for name in ["#", "f_low Hz", "f_high Hz", "peak Hz", "width Hz"] {
                        ui.label(RichText::new(name).strong());
                    }
                    ui.end_row();
                    for (i, [lo, peak, hi]) in self.bands.iter().enumerate() {
                        if ui.selectable_label(self.selected == i, format!("{i}")).clicked() {
                            self.selected = i;
                        }
                        for v in [lo, hi, peak, &(hi - lo)] {
                            ui.label(format!("{v:.1}"));
                        }
                        ui.end_row();
                    }
                });
            });
    }

    fn overlay(&mut self, ui: &mut Ui, axis: FrequencyAxis, height: f32) {
        if self.responses.is_empty() {
            return;
        }
        // The Hann window's far sidelobes reach -120 dB; below -80 only flattens the view.
        let to_points = |db: &[f64]| axis.points(&self.hz, db, -80.0);
        let summed = summed_response_db(&self.responses);
        let [lo, _, hi] = self.bands[self.selected];
        let response = Plot::new("mel-overlay")
            .height(height.max(80.0))
            .legend(Legend::default())
            .x_axis_label("fixed mel band responses, frequency (Hz)")
            .y_axis_label("dB")
            .x_axis_formatter(axis.tick_formatter())
            .include_y(-60.0)
            .include_y(5.0)
            .show(ui, |p| {
                for (i, db) in self.responses.iter().enumerate() {
                    if i != self.selected {
                        p.line(
                            Line::new("all bands", PlotPoints::new(to_points(db)))
                                .color(Color32::from_gray(90))
                                .width(0.5)
                                .allow_hover(false),
                        );
                    }
                }
                p.line(
                    Line::new("summed (power)", PlotPoints::new(to_points(&summed)))
                        .color(Color32::from_rgb(255, 120, 120))
                        .width(1.5),
                );
                p.line(
                    Line::new(
                        "selected band",
                        PlotPoints::new(to_points(&self.responses[self.selected])),
                    )
                    .color(Color32::LIGHT_BLUE)
                    .width(2.0),
                );
                for edge in [lo.max(1.0), hi] {
                    p.vline(
                        VLine::new("triangle feet", axis.to_axis(edge))
                            .color(Color32::from_rgb(255, 200, 80)),
                    );
                }
                p.pointer_coordinate()
            });
        // Clicking the overlay selects the band whose peak is nearest.
        if response.response.clicked()
            && let Some(pos) = response.inner
        {
            let hz = axis.to_hz(pos.x);
            if let Some(best) = (0..self.bands.len()).min_by(|&a, &b| {
                (self.bands[a][1] - hz)
                    .abs()
                    .total_cmp(&(self.bands[b][1] - hz).abs())
            }) {
                self.selected = best;
            }
        }
    }
}
