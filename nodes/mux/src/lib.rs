//! `mediagraph-nodes mux`: writes any number of encoded video and audio tracks into one
//! MP4, MKV or WebM file, one stream per input in the graph's order.
//!
//! Crash safety: the file is written as ≤ 1 s fragments (MP4) or clusters
//! (MKV/WebM), each handed to the kernel as it is cut, so a crash or
//! `kill -9` leaves a playable file; a clean stop makes the MP4 a normal
//! one (one index, moov first). `mediagraph-nodes mux --recover FILE...` (what `runtime
//! recover` runs) finalizes a file whose writer died.

mod disk;
mod finalize;
mod muxer;
mod output;
mod unnamed;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use node_api::{clock, metrics, Event, Header, NoRestart, Node};
use node_catalog::kinds::mux::{Container, OnLimit};

use muxer::{Muxer, Settings};

/// How often the metrics are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// How often the free space is checked while recording.
const CHECK_SPACE_EVERY: Duration = Duration::from_secs(1);
const MB: u64 = 1_000_000;

/// Entry point, with the arguments after the kind.
pub fn main(args: &[String]) {
    if args.first().map(String::as_str) == Some("--recover") {
        std::process::exit(recover_files(&args[1..]));
    }
    node_api::run_main(run);
}

fn run() -> Result<()> {
    node_media::init()?;
    disk::ignore_file_size_signal();
    let mut node = Node::init()?;
    let s = node_catalog::kinds::mux::Settings::from_params(node.params())?;
    let container = s.resolved_container()?.name();
    let base = PathBuf::from(&s.path);
    let overwrite = s.overwrite;
    let min_free = s.min_free_space * MB;
    // A restarted mux continues the recording in the next numbered file; the
    // interrupted one stays as it is (fragmented, playable) until the end.
    let restarted = node.config().restart_count > 0;
    let first_part = if restarted {
        output::next_free_part(&base, 0)
    } else {
        0
    };
    let first_path = output::part_path(&base, first_part);
    // Refused before the graph starts, not after a recording.
    output::check_path(
        &first_path,
        overwrite && !restarted,
        s.output_dir.as_deref(),
    )?;
    check_free_space(&first_path, min_free)?;
    if restarted {
        tracing::warn!(
            "restarted: continuing the recording in {}",
            first_path.display()
        );
    }
    let settings = Settings {
        base: base.clone(),
        container,
        faststart: s.faststart,
        overwrite,
        output_dir: s.output_dir.clone(),
        fragment_s: s.fragment_duration,
        max_duration: s.max_duration,
        max_bytes: s.max_file_size.map(|mb| mb.max(1) * MB),
        stop_at_limit: s.on_limit == OnLimit::Stop,
        first_part,
        recording: s.recording,
    };
    let inputs = node.input_names();
    if inputs.is_empty() {
        bail!("the mux has no inputs: connect at least one encoded track");
    }
    let mut mux = Muxer::new(settings, &inputs);
    tracing::info!(
        "mux to {} ({container}): tracks {}",
        first_path.display(),
        inputs.join(", ")
    );

    let result = record(&mut node, &mut mux, min_free);
    if let Err(e) = result {
        if disk::is_disk_error(&e) {
            // Keep what reached the disk, then fail without a restart: a
            // restarted mux would hit the same wall.
            let what = mux.salvage();
            publish(&node, &mux);
            return Err(NoRestart(format!("{e:#}; {what}")).into());
        }
        return Err(e);
    }
    let line = mux.finish().map_err(|e| {
        if disk::is_disk_error(&e) {
            NoRestart(format!("{e:#}")).into()
        } else {
            e
        }
    })?;
    tracing::info!("{line}");
    if restarted {
        account_for_restart(&node, &mux, &base, first_part);
    }
    publish(&node, &mux);
    node.finish()
}

/// The event loop: packets in, the file written, space watched.
fn record(node: &mut Node, mux: &mut Muxer, min_free: u64) -> Result<()> {
    let mut last_publish = Instant::now();
    let mut logged_bound = 0.0;
    let mut last_space_check = Instant::now();
    while let Some(event) = node.next_event()? {
        match event {
            Event::Input { input, message } => match message.header {
                Header::Packet(header) => {
                    let data = message.payload.as_slice();
                    mux.packet(&input, header, &data, message.seq, clock::now_ns())?;
                }
                Header::Video(_) | Header::Audio(_) => {
                    bail!("input `{input}` carries raw media: the mux takes encoded packets (put an encoder before it)")
                }
                Header::Stats(_) | Header::EndOfStream => {}
            },
            Event::InputClosed { input } => mux.close_input(&input)?,
            Event::ParamUpdate { name, value, at_ns } => {
                session_command(mux, &name, &value, at_ns);
                publish(node, mux);
            }
            Event::Stop => {}
        }
        if last_space_check.elapsed() >= CHECK_SPACE_EVERY {
            last_space_check = Instant::now();
            check_free_space(&mux.current_path(), min_free)?;
        }
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            publish(node, mux);
            log_crash_loss_bound(mux, &mut logged_bound);
        }
    }
    Ok(())
}

/// A recording session's command (the live params `recording`, `split`,
/// `chapter`; values already checked against the schema), made at `at_ns`.
fn session_command(mux: &mut Muxer, name: &str, value: &serde_json::Value, at_ns: u64) {
    let done = match (name, value) {
        ("recording", serde_json::Value::Bool(true)) => mux.start_session(at_ns),
        ("recording", serde_json::Value::Bool(false)) => mux.stop_session(at_ns),
        ("split", serde_json::Value::Bool(true)) => mux.split_now(at_ns),
        ("chapter", serde_json::Value::String(title)) => mux.add_chapter(at_ns, title.clone()),
        _ => muxer::Outcome::Ignored,
    };
    tracing::info!("{name} = {value}: {done:?}");
}

/// Logs the crash loss bound when it grew by more than 10 ms, so
/// the log of a run killed as a whole says what it may have lost.
fn log_crash_loss_bound(mux: &Muxer, logged: &mut f64) {
    let Some(bound) = mux.crash_loss_bound() else {
        return;
    };
    if bound > *logged + 0.01 {
        *logged = bound;
        tracing::info!(
            "crash loss bound: a crash of everything now loses at most {bound:.3} s at the end (the unwritten fragment, one packet and the media still on its way here)"
        );
    }
}

/// Fails with a [`disk::DiskError`] when the file system of `path` has less
/// than `min_free` bytes left for us.
fn check_free_space(path: &Path, min_free: u64) -> Result<()> {
    if min_free == 0 {
        return Ok(());
    }
    let dir = disk::dir_of(path);
    let free = match disk::free_bytes(dir) {
        Ok(f) => f,
        // A missing directory is reported by the path checks.
        Err(_) => return Ok(()),
    };
    if free < min_free {
        return Err(anyhow::Error::new(disk::DiskError(format!(
            "only {:.1} MB free on the file system of {} (min_free_space: {} MB)",
            free as f64 / MB as f64,
            dir.display(),
            min_free / MB
        ))));
    }
    Ok(())
}

/// A restarted mux: finalizes the parts its predecessor left interrupted and
/// counts the packets that never reached a file: sent while no mux was
/// running, in the fragment the crash cut short, or before the keyframe the
/// new file had to start on.
fn account_for_restart(node: &Node, mux: &Muxer, base: &Path, first_part: u32) {
    let mut before = vec![0u64; mux.tracks.len()];
    for n in 0..first_part {
        let path = output::part_path(base, n);
        if !path.exists() {
            continue;
        }
        let container = mux_container_of(&path);
        let counted = match finalize::recover(&path, container) {
            Ok(finalize::Recovery::Rewritten(r)) => {
                tracing::info!(
                    "finalized the interrupted {} ({:.2} s)",
                    path.display(),
                    r.seconds
                );
                Ok(r.packets)
            }
            Ok(finalize::Recovery::AlreadyFinal) => finalize::count_packets(&path),
            Err(e) => Err(e),
        };
        match counted {
            Ok(packets) => {
                for (b, p) in before.iter_mut().zip(packets) {
                    *b += p;
                }
            }
            Err(e) => tracing::warn!("{}: {e:#}", path.display()),
        }
    }
    let m = node.metrics();
    let (mut lost_packets, mut lost_s) = (0u64, 0.0f64);
    for (t, written_before) in mux.tracks.iter().zip(before) {
        let lost = t.first_seq.unwrap_or(0).saturating_sub(written_before) + t.dropped_at_start;
        // Packets of one track are of one duration (a frame, an audio
        // block): the count gives the media time missing from the parts.
        let seconds = lost as f64 * t.packet_seconds();
        m.set(&t.metric_lost, lost as f64);
        m.set(&t.metric_lost_s, seconds);
        if lost > 0 {
            tracing::warn!(
                "`{}`: {lost} packets ({seconds:.2} s) lost across the restart: not yet on disk when the mux died, sent while it was down, or before the keyframe the next part starts on",
                t.input
            );
        }
        lost_packets += lost;
        // The tracks play side by side: the recording misses the longest.
        lost_s = lost_s.max(seconds);
    }
    // What the runtime reports as this node's restart loss (it has no
    // consumers to measure it).
    m.set(metrics::RESTART_LOST_FRAMES, lost_packets as f64);
    m.set(metrics::RESTART_LOST_S, lost_s);
}

fn mux_container_of(path: &Path) -> &'static str {
    output::container(Container::Auto, &path.display().to_string()).unwrap_or("mp4")
}

fn publish(node: &Node, mux: &Muxer) {
    let m = node.metrics();
    m.set(metrics::BYTES_WRITTEN, mux.file_size() as f64);
    let duration = mux.duration();
    m.set(metrics::DURATION_S, duration);
    if duration > 0.0 {
        m.set(
            metrics::BITRATE_BPS,
            mux.payload_bytes() as f64 * 8.0 / duration,
        );
    }
    m.set(metrics::DROPPED, mux.dropped as f64);
    if let Some(bound) = mux.crash_loss_bound() {
        m.set(metrics::CRASH_LOSS_BOUND_S, bound);
    }
    m.set(metrics::DISCARDED, mux.discarded as f64);
    m.set(metrics::SKIPPED, mux.skipped as f64);
    m.set(metrics::RECORDING, f64::from(mux.is_recording()));
    m.set(metrics::CHAPTERS, mux.chapters() as f64);
    m.set(
        metrics::FILES,
        mux.parts.len() as f64 + f64::from(mux.is_writing()),
    );
    for t in &mux.tracks {
        m.set(&t.metric_packets, t.packets as f64);
        if let Some(p50) = t.latency.quantile_ms(0.5) {
            m.set(&t.metric_p50, p50);
        }
        if let Some(p99) = t.latency.quantile_ms(0.99) {
            m.set(&t.metric_p99, p99);
        }
    }
}

/// `mediagraph-nodes mux --recover FILE...`: finalizes each interrupted recording in
/// place. Exit 0 when every file is final, 1 when one could not be
/// recovered, 2 for bad usage (no file, a missing file, an unknown type).
fn recover_files(files: &[String]) -> i32 {
    if files.is_empty() {
        eprintln!("usage: node-mux --recover FILE...");
        return 2;
    }
    if let Err(e) = node_media::init() {
        eprintln!("error: {e:#}");
        return 1;
    }
    // The cut-short tail of a crashed file makes the demuxer complain; it is
    // expected and left out.
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    let mut code = 0;
    for file in files {
        let path = Path::new(file);
        let container = match output::container(Container::Auto, file) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                code = code.max(2);
                continue;
            }
        };
        if !path.is_file() {
            eprintln!("error: {file}: no such file");
            code = code.max(2);
            continue;
        }
        match finalize::recover(path, container) {
            Ok(finalize::Recovery::AlreadyFinal) => {
                println!("{file}: already a finalized MP4, left as it is");
            }
            Ok(finalize::Recovery::Rewritten(r)) => {
                let packets: u64 = r.packets.iter().sum();
                let cut = if r.incomplete > 0 {
                    format!(
                        "; {} packets of a fragment the interruption cut short left out",
                        r.incomplete
                    )
                } else {
                    String::new()
                };
                println!(
                    "{file}: recovered {:.2} s ({packets} packets in {} streams){cut}",
                    r.seconds,
                    r.packets.iter().filter(|n| **n > 0).count()
                );
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                code = 1;
            }
        }
    }
    code
}
