//! The worker thread: loads models and recordings, runs inference and attributions, and reports
//! through a channel. The UI thread never waits for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use burn::tensor::Device;

use super::decimate::MinMaxPyramid;
use super::session::{HeartCycleView, MemberView, ModelView, RecordingView};
use crate::backend::BackendChoice;
use crate::explain::attribution::{self, Heatmap, HeatmapMethod};
use crate::explain::{self, Analysis};
use crate::model::Ensemble;

/// Work for the worker.
#[derive(Clone, Debug)]
pub enum Job {
    LoadModel(PathBuf),
    Open(PathBuf),
    Heatmap { method: HeatmapMethod, class: usize },
}

/// What the worker reports, in order.
#[derive(Debug)]
pub enum Report {
    /// The model backend in use (sent once, first).
    Backend(String),
    /// A job started.
    Busy(String),
    /// Fraction of the current job done.
    Progress(f32),
    ModelLoaded(Result<Arc<ModelView>, String>),
    Opened(Result<Arc<RecordingView>, String>),
    Analysed(Result<Arc<Analysis>, String>),
    Heatmap(Result<Arc<Heatmap>, String>),
    /// Nothing left to do.
    Idle,
}

/// The UI's end of the worker.
pub struct Worker {
    jobs: Option<Sender<Job>>,
    pub reports: Receiver<Report>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker, which first picks the backend; `notify` is called after every report
    /// (e.g. to repaint).
    pub fn start(choice: BackendChoice, notify: impl Fn() + Send + 'static) -> Self {
        let (jobs, job_rx) = channel();
        let (report_tx, reports) = channel();
        let thread = std::thread::Builder::new()
            .name("iconnet-worker".into())
            .spawn(move || {
                let send = |r: Report| {
                    let _ = report_tx.send(r);
                    notify();
                };
                let (device, backend) = match crate::backend::select(choice) {
                    Ok(b) => (b.device, b.description),
                    Err(e) => (Device::flex(), format!("flex (CPU); {e}")),
                };
                send(Report::Backend(backend.clone()));
                let mut state = State {
                    device,
                    backend,
                    model: None,
                    autodiff_model: None,
                    recording: None,
                };
                while let Ok(job) = job_rx.recv() {
                    // Later heatmap requests supersede queued ones.
                    let mut queue = vec![job];
                    queue.extend(job_rx.try_iter());
                    let last_heatmap = queue.iter().rposition(|j| matches!(j, Job::Heatmap { .. }));
                    for (i, job) in queue.into_iter().enumerate() {
                        if matches!(job, Job::Heatmap { .. }) && Some(i) != last_heatmap {
                            continue;
                        }
                        state.run(job, &send);
                    }
                    send(Report::Idle);
                }
            })
            .expect("spawn worker thread");
        Self {
            jobs: Some(jobs),
            reports,
            thread: Some(thread),
        }
    }

    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    device: Device,
    backend: String,
    model: Option<(Ensemble, Arc<ModelView>)>,
    /// The same weights on the autodiff device, made on the first attribution request.
    autodiff_model: Option<Ensemble>,
    /// The opened file and its samples at the model's rate.
    recording: Option<(PathBuf, Vec<f32>)>,
}

impl State {
    fn run(&mut self, job: Job, send: &dyn Fn(Report)) {
        match job {
            Job::LoadModel(path) => {
                send(Report::Busy(format!("loading model {}", path.display())));
                match load_model(&path, &self.device, &self.backend) {
                    Ok((model, view)) => {
                        send(Report::ModelLoaded(Ok(view.clone())));
                        self.model = Some((model, view));
                        self.autodiff_model = None;
                        // The rate may differ: reload and re-analyse what is open.
                        if let Some((path, _)) = self.recording.take() {
                            self.open(&path, send);
                        }
                    }
                    Err(e) => send(Report::ModelLoaded(Err(e))),
                }
            }
            Job::Open(path) => self.open(&path, send),
            Job::Heatmap { method, class } => {
                send(Report::Busy(format!("computing {}", method.label())));
                send(Report::Heatmap(self.heatmap(method, class, send)));
            }
        }
    }

    fn open(&mut self, path: &Path, send: &dyn Fn(Report)) {
        send(Report::Busy(format!("opening {}", path.display())));
        let Some((model, _)) = &self.model else {
            send(Report::Opened(Err("no model loaded".into())));
            return;
        };
        let rate = model.config().sample_rate;
        match model.load_recording(path) {
            Ok((samples, decoded)) => {
                send(Report::Progress(0.3));
                let view = RecordingView {
                    path: path.to_path_buf(),
                    rate,
                    original_rate: decoded.sample_rate,
                    channels: decoded.channels,
                    waveform: Arc::new(MinMaxPyramid::new(samples.clone())),
                    warnings: decoded.warnings,
                    heart_cycles: HeartCycleView::for_recording(
                        &samples,
                        rate,
                        model.config().is_heart_sound_model(),
                    ),
                };
                send(Report::Opened(Ok(Arc::new(view))));
                send(Report::Busy(format!("analysing {}", path.display())));
                let analysis = explain::analyse_ensemble(model, &samples).map(Arc::new);
                send(Report::Analysed(analysis));
                self.recording = Some((path.to_path_buf(), samples));
            }
            Err(e) => send(Report::Opened(Err(e.to_string()))),
        }
    }

    fn heatmap(
        &mut self,
        method: HeatmapMethod,
        class: usize,
        send: &dyn Fn(Report),
    ) -> Result<Arc<Heatmap>, String> {
        let (Some((_, view)), Some((_, samples))) = (&self.model, &self.recording) else {
            return Err("open a recording first".into());
        };
        if self.autodiff_model.is_none() {
            self.autodiff_model = Some(attribution::load_for_attribution(&view.path, &self.device)?);
        }
        let model = self.autodiff_model.as_ref().expect("just loaded");
        let map =
            attribution::explain_ensemble(model, samples, method, class, 16, |f| send(Report::Progress(f)))?;
        Ok(Arc::new(map))
    }
}

/// Loads a checkpoint or an ensemble manifest and describes it for the views.
pub fn load_model(path: &Path, device: &Device, backend: &str) -> Result<(Ensemble, Arc<ModelView>), String> {
    let ensemble = Ensemble::load(path, device)?;
    let view = describe(&ensemble, backend);
    Ok((ensemble, Arc::new(view)))
}

/// What the views need to know about a loaded model.
fn describe(ensemble: &Ensemble, backend: &str) -> ModelView {
    ModelView {
        path: ensemble.path.clone(),
        name: ensemble.name.clone(),
        notes: ensemble.notes.clone(),
        members: ensemble
            .members
            .iter()
            .map(|m| MemberView {
                path: m.path.clone(),
                card: m.card.clone(),
                filters: explain::filters(&m.model),
                taps: m.model.blocks.iter().map(|b| b.bank.taps).collect(),
            })
            .collect(),
        backend: backend.to_string(),
    }
}
