//! [`CombinedRecorder`]: the original design's recorder. One config, any
//! number of recordings one after another; each is a graph run (one
//! process per stage), fed with the frames the app submits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use runtime::control::{Command, Recording, Refusal, SessionRefusal};

use crate::audio::AudioInput;
use crate::config::{AudioSource, RecordingConfig, VideoSource};
use crate::error::{RecorderError, Result};
use crate::events::StatusEvent;
use crate::frames::{AudioFrame, VideoFrame};
use crate::graph::{self, APP_AUDIO, APP_VIDEO};
use crate::running::{RunningGraph, Runtime};
use crate::stats::{RecordingSummary, Statistics};
use crate::video::{VideoBuffer, VideoInput};

/// Names one recording of a recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "recording-{}", self.0)
    }
}

/// The recording going on.
struct Session {
    id: SessionId,
    path: PathBuf,
    running: RunningGraph,
    video: Option<VideoInput>,
    audio: Option<AudioInput>,
}

/// Records what the app submits (or its devices) to a file. Every method
/// takes `&self`: share it (`Arc`) between a video thread, an audio thread
/// and the UI.
pub struct CombinedRecorder {
    config: RecordingConfig,
    runtime: Runtime,
    session: Mutex<Option<Session>>,
    next_id: Mutex<u64>,
}

impl CombinedRecorder {
    /// A recorder for `config`, which is checked now (the same checks as
    /// `runtime check` on the graph it becomes).
    pub fn new(config: RecordingConfig) -> Result<CombinedRecorder> {
        config.validate()?;
        let mut runtime = Runtime::new()
            .run_dir(&config.run_dir)
            .when_behind(config.when_behind);
        if let Some(dir) = &config.node_dir {
            runtime = runtime.node_dir(dir);
        }
        if let Some(addr) = &config.control {
            runtime = runtime.control(addr.clone());
        }
        Ok(CombinedRecorder {
            config,
            runtime,
            session: Mutex::new(None),
            next_id: Mutex::new(0),
        })
    }

    /// The config it records with.
    pub fn config(&self) -> &RecordingConfig {
        &self.config
    }

    /// Starts recording to `path` (container from its extension unless the
    /// config sets one). Returns once the graph runs and frames are taken.
    pub fn start_recording(&self, path: impl AsRef<Path>) -> Result<SessionId> {
        let mut session = self.session.lock().unwrap();
        if session.is_some() {
            return Err(RecorderError::AlreadyRecording);
        }
        let path = path.as_ref().to_path_buf();
        let graph = graph::build(&self.config, &path)?;
        let running = self.runtime.start_graph(graph)?;
        let video = (self.config.video.source == VideoSource::Submitted)
            .then(|| running.video_input(APP_VIDEO))
            .transpose()?;
        let audio = self
            .config
            .audio
            .as_ref()
            .filter(|a| a.source == AudioSource::Submitted)
            .map(|_| running.audio_input(APP_AUDIO))
            .transpose()?;
        let mut next = self.next_id.lock().unwrap();
        *next += 1;
        let id = SessionId(*next);
        tracing::info!("{id}: recording to {}", path.display());
        *session = Some(Session {
            id,
            path,
            running,
            video,
            audio,
        });
        Ok(id)
    }

    /// Copies the frame once into shared memory and sends it to the graph.
    pub fn submit_video_frame(&self, frame: VideoFrame) -> Result<()> {
        self.video_input()?.submit(&frame)
    }

    /// Sends the frame's samples to the graph.
    pub fn submit_audio_frame(&self, frame: AudioFrame) -> Result<()> {
        self.audio_input()?.submit(&frame)
    }

    /// A frame buffer in shared memory to draw into, for
    /// [`Self::submit_video_buffer`]: no copy of the picture on its way to
    /// the encoder.
    pub fn video_buffer(&self) -> Result<VideoBuffer> {
        self.video_input()?.buffer()
    }

    /// Sends a buffer from [`Self::video_buffer`]; `timestamp` as in
    /// [`VideoFrame::timestamp`].
    pub fn submit_video_buffer(
        &self,
        buffer: VideoBuffer,
        timestamp: Option<std::time::Duration>,
    ) -> Result<()> {
        self.video_input()?.submit_buffer(buffer, timestamp)
    }

    /// The video input of the recording going on (held outside the
    /// recorder's lock, so a submit waiting for room blocks nothing else).
    pub fn video_input(&self) -> Result<VideoInput> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        s.video
            .clone()
            .ok_or_else(|| RecorderError::NoSuchInput("video (its source is a device)".into()))
    }

    /// The audio input of the recording going on.
    pub fn audio_input(&self) -> Result<AudioInput> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        s.audio.clone().ok_or_else(|| {
            RecorderError::NoSuchInput("audio (it has none, or its source is a device)".into())
        })
    }

    /// Pauses: what is captured from now until [`Self::resume_recording`] is
    /// left out of the file, and the file goes on without a gap.
    pub fn pause_recording(&self) -> Result<()> {
        self.set_paused(true)
    }

    /// Resumes a paused recording.
    pub fn resume_recording(&self) -> Result<()> {
        self.set_paused(false)
    }

    fn set_paused(&self, paused: bool) -> Result<()> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        // Through the control API's state, which a dashboard watching this
        // recording shows; pausing what is paused is no error here.
        match s.running.control().set_paused(paused) {
            Ok(_) | Err(Refusal::Already(_)) => Ok(()),
            Err(r) => Err(RecorderError::Failed(r.message())),
        }
    }

    /// Ends the file at the frame captured now and goes on in the next
    /// numbered one (`take.mp4`, `take-001.mp4`, ...), nothing lost at the
    /// cut: the control API's `split`.
    pub fn split_recording(&self) -> Result<()> {
        self.session_command(Command::Split)
    }

    /// A chapter titled `title` from the frame captured now, in the file
    /// being written (MP4 and MKV chapters): the control API's `chapter`.
    pub fn add_chapter(&self, title: &str) -> Result<()> {
        self.session_command(Command::Chapter(title.to_string()))
    }

    /// Every replay-buffer node of the graph writes its last seconds to a
    /// new file, up to the frame captured now: the control API's
    /// `replay/save`. An error when the graph has none (the graph a
    /// [`RecordingConfig`] makes has none; a graph run through
    /// [`Runtime`] may: its `control().save_replay()` does the same).
    pub fn save_replay(&self) -> Result<()> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        match s.running.control().save_replay() {
            Ok(_) => Ok(()),
            Err(r) => Err(RecorderError::Failed(format!(
                "save replay: {}",
                r.message()
            ))),
        }
    }

    fn session_command(&self, command: Command) -> Result<()> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        match s.running.control().session(&command) {
            Ok(_) => Ok(()),
            Err(Refusal::Session(SessionRefusal::NotRecording)) => Err(RecorderError::NotRecording),
            Err(r) => Err(RecorderError::Failed(format!(
                "{}: {}",
                command.name(),
                r.message()
            ))),
        }
    }

    /// The control API's URL, when the config serves it
    /// ([`RecordingConfig::control`]) and a recording is going on.
    pub fn control_url(&self) -> Option<String> {
        let session = self.session.lock().unwrap();
        session.as_ref()?.running.control_url().map(str::to_string)
    }

    /// Whether a recording is going on.
    pub fn is_recording(&self) -> bool {
        self.session.lock().unwrap().is_some()
    }

    /// Whether the recording going on is paused (by the app or through
    /// the control API).
    pub fn is_paused(&self) -> bool {
        self.session
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.running.control().state().recording == Recording::Paused)
    }

    /// The figures of the recording going on.
    pub fn statistics(&self) -> Result<Statistics> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        Ok(s.running.statistics())
    }

    /// Status events of the recording going on: statistics every half
    /// second, warnings, node failures, the stop.
    pub fn subscribe(&self) -> Result<std::sync::mpsc::Receiver<StatusEvent>> {
        let session = self.session.lock().unwrap();
        let s = session.as_ref().ok_or(RecorderError::NotRecording)?;
        Ok(s.running.subscribe())
    }

    /// Ends the recording: the submitted streams end, the graph drains and
    /// the file is finalized. An error when a node failed (its file keeps
    /// what was written up to then).
    pub fn stop_recording(&self) -> Result<RecordingSummary> {
        let s = self
            .session
            .lock()
            .unwrap()
            .take()
            .ok_or(RecorderError::NotRecording)?;
        let graph = s.running.graph().clone();
        let report = s.running.stop_and_wait()?;
        tracing::info!("{}: stopped", s.id);
        if let Some(error) = &report.error {
            return Err(RecorderError::Failed(error.clone()));
        }
        Ok(RecordingSummary::of(report, &graph, s.path))
    }
}

impl Drop for CombinedRecorder {
    /// A recording still going on is stopped and its file finalized.
    fn drop(&mut self) {
        let _ = self.stop_recording();
    }
}

/// For apps that keep the recorder in shared state.
pub type SharedRecorder = Arc<CombinedRecorder>;
