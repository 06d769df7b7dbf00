//! For a heart-sound model: the heart rate and systolic interval found in the recording, and how
//! the heatmap's weight divides among S1, systole, S2 and diastole next to the time each takes.

use eframe::egui::{self, Color32, RichText, Ui};

use std::sync::{Arc, Weak};

use crate::app::session::{HeartCycleView, Loaded};
use crate::dsp::heart_cycle::{CyclePhase, CycleProfile, PhaseShare, cycle_profile, shares_by_phase};
use crate::explain::attribution::Heatmap;

/// How the segmentation was made, for the section's hover text.
const METHOD: &str = "S1 and S2 are the loud sounds of the 25-400 Hz envelope, told apart by \
timing: a duration-constrained segmentation (Springer et al. 2016's durations around the heart \
rate and systolic interval read off the envelope's autocorrelation). It has not been scored \
against annotated recordings: check the markers on the waveform.";

/// Colour of a phase's markers and labels.
pub fn phase_colour(phase: CyclePhase) -> Color32 {
    match phase {
        CyclePhase::S1 => Color32::from_rgb(255, 150, 60),
        CyclePhase::S2 => Color32::from_rgb(190, 130, 255),
        CyclePhase::Systole | CyclePhase::Diastole => Color32::GRAY,
    }
}

pub fn ui(ui: &mut Ui, data: &Loaded) {
    let Some(cycles) = data.recording.as_ref().and_then(|r| r.heart_cycles.as_ref()) else {
        return;
    };
    ui.add_space(4.0);
    ui.label(RichText::new("Heart cycle (estimated from the recording)").strong())
        .on_hover_text(METHOD);
    let view = match cycles {
        Ok(view) => view,
        Err(e) => {
            ui.label(RichText::new(format!("not found: {e}")).small());
            return;
        }
    };
    ui.label(&view.summary);
    let Some(heatmap) = &data.heatmap else {
        return;
    };
    let reading = reading(ui, view, heatmap);
    ui.label(RichText::new(format!("share of the heatmap: {}", heatmap.title())).small());
    egui::Grid::new("heart-cycle-shares")
        .num_columns(4)
        .striped(true)
        .show(ui, |ui| {
            ui.label("");
            ui.label(RichText::new("of the time").small());
            ui.label(RichText::new("of the weight").small());
            ui.label(RichText::new("ratio").small())
                .on_hover_text("weight share / time share: above 1, the heatmap favours this phase");
            ui.end_row();
            for s in reading.shares {
                ui.label(RichText::new(s.phase.label()).color(phase_colour(s.phase)));
                ui.label(format!("{:.0} %", 100.0 * s.time_share));
                ui.label(format!("{:.0} %", 100.0 * s.weight_share));
                ui.label(if s.time_share > 0.0 {
                    format!("× {:.2}", s.weight_share / s.time_share)
                } else {
                    "–".into()
                });
                ui.end_row();
            }
        });
    if let Some(profile) = &reading.profile {
        ui.label(
            RichText::new(format!(
                "the heatmap over an average beat ({} beats; 1 = its mean)",
                profile.beats
            ))
            .small(),
        );
        profile_plot(ui, profile);
    }
}

/// How one heatmap falls in one segmentation: the phases' shares and the average beat.
struct Reading {
    shares: [PhaseShare; 4],
    profile: Option<CycleProfile>,
}

/// The [`Reading`] of `heatmap` in `view`, computed once per pair and then kept in egui's
/// memory rather than on every UI frame: both walk every heatmap frame and every phase of the
/// recording (37 k and 30 k for ten minutes). The key holds weak pointers, so a freed heatmap's
/// address cannot be mistaken for a new one's.
fn reading(ui: &Ui, view: &Arc<HeartCycleView>, heatmap: &Arc<Heatmap>) -> Arc<Reading> {
    type Cached = (Weak<HeartCycleView>, Weak<Heatmap>, Arc<Reading>);
    let id = egui::Id::unique("heart-cycle-reading");
    let cached = ui.ctx().data(|d| d.get_temp::<Cached>(id));
    if let Some((v, h, reading)) = cached
        && v.ptr_eq(&Arc::downgrade(view))
        && h.ptr_eq(&Arc::downgrade(heatmap))
    {
        return reading;
    }
    let reading = Arc::new(Reading {
        shares: shares_by_phase(&view.cycles, &heatmap.values, &heatmap.times_s),
        profile: cycle_profile(&view.cycles, &heatmap.values, &heatmap.times_s),
    });
    let entry: Cached = (Arc::downgrade(view), Arc::downgrade(heatmap), reading.clone());
    ui.ctx().data_mut(|d| d.insert_temp(id, entry));
    reading
}

/// The folded heatmap over one average beat, with the phases marked and named.
fn profile_plot(ui: &mut Ui, profile: &CycleProfile) {
    let top = profile.points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.25;
    egui_plot::Plot::new("heart-cycle-profile")
        .height(120.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .include_y(top)
        .x_axis_formatter(|m, _| format!("{:.1} s", m.value))
        .label_formatter(|hover| {
            let p = super::hover_point(hover);
            Some(format!("{:.2} s after S1 onset\n× {:.2} of the mean", p.x, p.y))
        })
        .show(ui, |plot| {
            for (i, phase) in CyclePhase::ALL.into_iter().enumerate() {
                let (a, b) = (profile.phase_bounds_s[i], profile.phase_bounds_s[i + 1]);
                plot.vline(
                    egui_plot::VLine::new("phase", a)
                        .color(Color32::from_gray(90))
                        .width(1.0),
                );
                plot.text(
                    egui_plot::Text::new(
                        phase.label(),
                        egui_plot::PlotPoint::new((a + b) / 2.0, 0.92 * top),
                        RichText::new(phase.label()).small(),
                    )
                    .color(phase_colour(phase)),
                );
            }
            plot.hline(
                egui_plot::HLine::new("mean", 1.0)
                    .color(Color32::from_gray(110))
                    .width(1.0),
            );
            let points: Vec<[f64; 2]> = profile.points.iter().map(|&(x, y)| [x, y]).collect();
            plot.line(
                egui_plot::Line::new("heatmap", egui_plot::PlotPoints::new(points))
                    .color(Color32::from_rgb(255, 200, 90))
                    .width(2.0),
            );
        });
}
