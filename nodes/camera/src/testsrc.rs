//! The test pattern as a source.

use anyhow::Result;
use node_api::clock::{self, SimulatedDevice};
use node_api::{Node, TimeBase};
use node_media::video::packed_frame;

use crate::capture::{Capture, Pacer};
use crate::pattern::{frame_offset_ns, starts_a_second, TestPattern};

pub struct PatternCapture {
    pattern: TestPattern,
    pacer: Pacer,
    device: SimulatedDevice,
    /// Media to produce, ns of the device's own clock; `None`: endless.
    duration_ns: Option<u64>,
    epoch_ns: u64,
}

impl PatternCapture {
    /// `epoch_ns`: the run's epoch (0: none). The pattern's timeline starts
    /// there, so every test source of a run shows the same scene time (the
    /// clapper flashes on whole seconds from it); a realtime source joins it
    /// at the first frame due after now.
    pub fn new(
        pattern: TestPattern,
        realtime: bool,
        epoch_ns: u64,
        device: SimulatedDevice,
        duration_ns: Option<u64>,
    ) -> PatternCapture {
        let pacer = match epoch_ns {
            0 => Pacer::new(realtime),
            epoch => Pacer::starting_at(realtime, epoch),
        };
        PatternCapture {
            pattern,
            pacer,
            device,
            duration_ns,
            epoch_ns,
        }
    }

    /// The first frame to produce: 0, or for a realtime source on the
    /// run's epoch the first one not yet due.
    fn first_index(&self) -> u64 {
        if self.epoch_ns == 0 || !self.pacer.realtime() {
            return 0;
        }
        let fps = self.pattern.config().fps;
        let late_s = clock::now_ns().saturating_sub(self.epoch_ns) as f64 / 1e9;
        (late_s * self.device.rate_factor() * fps.num as f64 / fps.den as f64).ceil() as u64
    }
}

/// The scene's time when a frame is taken `at_ns` after the epoch on the
/// capture clock: that, except in a simulation of a rig's clocks (see
/// `node_api::clock::simulated`), where the scene keeps the physical time
/// whatever the capture clock says, and the clapper claps half a frame after
/// each whole second: on a frame boundary a clap would move a frame with the
/// smallest error, mid-frame it moves once the capture clock is off by half
/// a frame either way.
fn scene_ns(at_ns: u64, half_frame_ns: u64) -> u64 {
    match clock::simulated::error_ns() {
        Some(error) => (at_ns as i64 - error - half_frame_ns as i64).max(0) as u64,
        None => at_ns,
    }
}

impl Capture for PatternCapture {
    fn unpaced(&self) -> bool {
        !self.pacer.realtime()
    }

    fn max_frame_bytes(&self) -> usize {
        self.pattern.layout().size
    }

    fn run(&mut self, node: &mut Node) -> Result<u64> {
        let c = *self.pattern.config();
        let time_base = TimeBase::new(c.fps.den as i32, c.fps.num as i32);
        let size = self.pattern.layout().size;
        let started = clock::now_ns();
        let first = self.first_index();
        let mut index = first;
        let mut sent = 0u64;
        let half_frame_ns = frame_offset_ns(1, c.fps) / 2;
        let mut prev_ns = first.checked_sub(1).map(|i| {
            scene_ns(
                self.device.true_ns(frame_offset_ns(i, c.fps)),
                half_frame_ns,
            )
        });
        while !node.stop_requested() {
            let device_ns = frame_offset_ns(index, c.fps);
            if self
                .duration_ns
                .is_some_and(|d| device_ns - frame_offset_ns(first, c.fps) >= d)
            {
                break;
            }
            // The frame shows the scene at the capture-clock instant it is
            // taken; a skewed device takes it earlier or later than its own
            // frame count says.
            let at_ns = self.device.true_ns(device_ns);
            let capture_ns = self.pacer.wait(at_ns, || node.stop_requested());
            if node.stop_requested() {
                break;
            }
            let scene = scene_ns(at_ns, half_frame_ns);
            let clap = starts_a_second(prev_ns, scene);
            prev_ns = Some(scene);
            if !self.device.lost(at_ns) {
                let mut buf = node.alloc("video", size)?;
                self.pattern.render(index, clap, &mut buf);
                let frame = packed_frame(
                    c.format,
                    c.width,
                    c.height,
                    index as i64,
                    time_base,
                    self.device.stamp(capture_ns),
                );
                node.send_video("video", frame, buf)?;
                sent += 1;
            }
            index += 1;
        }
        let secs = (clock::now_ns() - started) as f64 / 1e9;
        tracing::info!(
            "test pattern: {sent} frames {}x{} {} in {secs:.2} s ({:.1} fps)",
            c.width,
            c.height,
            c.format.name(),
            sent as f64 / secs.max(1e-9)
        );
        Ok(sent)
    }
}
