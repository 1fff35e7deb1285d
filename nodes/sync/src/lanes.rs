//! One input of sync and the output of the same name: a camera
//! (`video` .. `video8`) or an audio stream (`audio` .. `audio8`). Each lane
//! holds what it sends until T0, then follows its own clock: two microphones
//! run on two crystals, so each audio lane has its own drift estimate and
//! correction.

use node_api::{metrics, AudioFrame, Node, Payload, PortType, VideoFrame};

use crate::audio_out::Batch;
use crate::drift::DriftCorrector;
use crate::hold::Hold;
use crate::timeline::{AudioClock, VideoClock};

/// The inputs of `ty`, sorted: `video` before `video2` .. `video8`, `audio`
/// before `audio2` .. `audio8`.
pub fn inputs_of(node: &Node, ty: PortType) -> Vec<String> {
    let mut names: Vec<String> = node
        .config()
        .inputs
        .iter()
        .filter(|i| i.ty == ty)
        .map(|i| i.name.clone())
        .collect();
    names.sort();
    names
}

/// Folds a new capture-time error (ns) into a running average over about
/// fifty frames, so timestamp jitter does not swamp it.
pub fn smooth(average: &mut Option<f64>, error_ns: i64) {
    let e = error_ns as f64;
    *average = Some(average.map_or(e, |a| a + (e - a) / 50.0));
}

/// One camera: its input and the output of the same name, its frames held
/// until T0, then its clock.
pub struct VideoLane {
    pub name: String,
    pub has_output: bool,
    pub held: Hold<(VideoFrame, Payload)>,
    pub clock: Option<VideoClock>,
    pub closed: bool,
    pub frames: u64,
    /// Capture-time error of the frames sent, ns, smoothed.
    pub offset: Option<f64>,
    /// Capture time of the first frame sent, from T0, ns.
    pub first_from_t0: Option<i64>,
    pub metric_first: String,
}

impl VideoLane {
    pub fn new(name: &str, has_output: bool) -> VideoLane {
        VideoLane {
            name: name.to_string(),
            has_output,
            held: Hold::new(),
            clock: None,
            closed: false,
            frames: 0,
            offset: None,
            first_from_t0: None,
            metric_first: metrics::per_input(metrics::FIRST_OFFSET_MS, name),
        }
    }
}

/// One audio stream: its input and the output of the same name.
pub struct AudioLane {
    pub name: String,
    pub has_output: bool,
    pub held: Hold<(AudioFrame, Payload)>,
    pub clock: Option<AudioClock>,
    pub drift: Option<DriftCorrector>,
    pub closed: bool,
    /// Capture-time error of the audio sent, ns, smoothed.
    pub offset: Option<f64>,
    /// Capture time of the first sample sent, from T0, ns.
    pub first_from_t0: Option<i64>,
    /// What goes out next on this lane's output.
    pub batch: Batch,
    pub metric_first: String,
    pub metric_av_offset: String,
    pub metric_drift: String,
    pub metric_correction: String,
}

impl AudioLane {
    pub fn new(name: &str, has_output: bool) -> AudioLane {
        AudioLane {
            name: name.to_string(),
            has_output,
            held: Hold::new(),
            clock: None,
            drift: None,
            closed: false,
            offset: None,
            first_from_t0: None,
            batch: Batch::new(name),
            metric_first: metrics::per_input(metrics::FIRST_OFFSET_MS, name),
            metric_av_offset: metrics::per_input(metrics::TRACK_AV_OFFSET_MS, name),
            metric_drift: metrics::per_input(metrics::TRACK_DRIFT_PPM, name),
            metric_correction: metrics::per_input(metrics::TRACK_DRIFT_CORRECTION_PPM, name),
        }
    }

    /// Samples sent so far (before what a pause cut).
    pub fn emitted(&self) -> i64 {
        self.clock.as_ref().map_or(0, AudioClock::emitted)
    }

    /// The clock's estimated drift, ppm (0 before any audio).
    pub fn drift_ppm(&self) -> f64 {
        self.drift.as_ref().map_or(0.0, |d| d.tracker.ppm())
    }
}
