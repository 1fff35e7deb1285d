//! Nothing recorded is lost: a recording survives `kill -9` of everything as a
//! playable file that `runtime recover` finalizes; a killed mux continues in
//! the next numbered file and the loss is counted; `max_duration` splits with
//! no gap or overlap; a full disk or the file size limit ends the run with a
//! clear error and a playable file; a restarted consumer still sees the
//! end-of-stream its producer sent before the restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use graph_tests::media::{
    decode_errors, faststart_problem, probe, repo_graph, require_ffmpeg, run_to_end, run_tool,
    run_with_limit, top_level_boxes,
};
use graph_tests::{descendants, is_root, kill_tree, read_json, runtime_bin, RunResult, Scratch};

/// `--set` arguments for the 1080p graph at 320×240 with these extra sets.
fn small_graph_args(extra: &[String]) -> Vec<String> {
    let mut sets = vec!["width=320".to_string(), "height=240".to_string()];
    sets.extend(extra.iter().cloned());
    sets.iter()
        .flat_map(|x| ["--set".to_string(), x.clone()])
        .collect()
}

/// Starts `runtime run` on the 1080p graph in the background, its log to
/// `runtime.log` in the scratch directory.
fn start_recording(s: &Scratch, args: &[String]) -> Child {
    let log = std::fs::File::create(s.path("runtime.log")).expect("log file");
    s.runtime_run(&repo_graph("1080p.yaml"), args)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("runtime starts")
}

/// Seconds of video a file plays, by decoding it (0 while it cannot be read).
fn video_seconds(path: &Path) -> f64 {
    probe(path)
        .ok()
        .and_then(|p| {
            p.video
                .first()
                .map(|v| if v.frames() > 0 { v.span() } else { 0.0 })
        })
        .unwrap_or(0.0)
}

/// Polls until the file plays at least `seconds` of video; returns what it
/// played at the last poll. Panics (after killing `child`) if that never happens.
fn wait_for_media(child: &mut Child, path: &Path, seconds: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = video_seconds(path);
        if got >= seconds {
            return got;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            kill_tree(child.id());
            panic!(
                "{} never reached {seconds} s of video (got {got:.2} s)",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Video packets per fragment of a fragmented MP4 (the mdat after each moof).
fn video_packets_per_fragment(path: &Path) -> Vec<usize> {
    let boxes = top_level_boxes(path).expect("box layout");
    let mut mdats = Vec::new();
    let mut pos = 0u64;
    for (kind, size) in &boxes {
        if kind == "mdat" {
            mdats.push((pos, pos + size));
        }
        pos += size;
    }
    let out = run_tool(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "packet=pos", "-of", "csv=p=0"])
            .arg(path),
    );
    let mut counts = vec![0usize; mdats.len()];
    for line in out.lines() {
        if let Ok(p) = line.trim().parse::<u64>() {
            if let Some(i) = mdats.iter().position(|(a, b)| (*a..*b).contains(&p)) {
                counts[i] += 1;
            }
        }
    }
    counts
}

fn assert_plays_cleanly(path: &Path) {
    let errors = decode_errors(path);
    assert!(
        errors.is_empty(),
        "{} does not decode cleanly:\n{errors}",
        path.display()
    );
}

fn recover(path: &Path) -> std::process::Output {
    Command::new(runtime_bin())
        .arg("recover")
        .arg(path)
        .output()
        .expect("runtime recover runs")
}

/// `kill -9` of the runtime and every node at once: the file on disk plays
/// to within a fragment of what was written, `runtime recover` makes it a
/// normal faststart MP4 without losing any of it, and the media lost at the
/// end (the media time at the kill against the end of the recovered video)
/// is within the crash loss bound the mux logged before the kill.
#[test]
fn kill_9_of_everything_leaves_a_playable_file_that_recover_finalizes() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("take.mp4");
    let mut child = start_recording(
        &s,
        &small_graph_args(&[format!("mux.path={}", out.display())]),
    );
    let before_kill = wait_for_media(&mut child, &out, 2.0);
    let pids = descendants(child.id());
    assert!(pids.len() >= 9, "runtime and 8 nodes: {pids:?}");
    // The capture clock of this machine (every node's on a one-machine run).
    let killed_at_ns = node_api::clock::host_now_ns();
    kill_tree(child.id());
    let _ = child.wait();

    // On disk: a fragmented MP4 whose fragments hold at most ~1 s each.
    let boxes: Vec<String> = top_level_boxes(&out)
        .map(|b| b.into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    assert!(
        boxes.iter().any(|k| k == "moof"),
        "the file is written as fragments: {boxes:?}"
    );
    let per_fragment = video_packets_per_fragment(&out);
    assert!(
        per_fragment.iter().all(|n| *n <= 31),
        "a fragment holds more than 1 s of 30 fps video: {per_fragment:?}"
    );
    // Everything that was on disk before the kill still plays. (A kill in
    // the middle of writing one fragment would leave it cut short: the
    // writes of one fragment take microseconds every half second.)
    assert_plays_cleanly(&out);
    let killed_seconds = video_seconds(&out);
    assert!(
        killed_seconds >= before_kill,
        "the killed file plays {killed_seconds:.2} s, {before_kill:.2} s played before the kill"
    );

    let r = recover(&out);
    assert!(
        r.status.success(),
        "runtime recover failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("recovered"),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert_eq!(faststart_problem(&out), None);
    assert_plays_cleanly(&out);
    let recovered = video_seconds(&out);
    assert!(
        recovered >= killed_seconds - 1e-3,
        "recovered {recovered:.2} s of video, the killed file played {killed_seconds:.2} s"
    );
    let p = probe(&out).unwrap();
    assert_eq!((p.video.len(), p.audio.len()), (1, 1), "both tracks kept");
    // Media time 0 of the file is T0 of the capture clock (sync's common
    // start): at the kill, the media went up to the kill's instant.
    let log =
        |node: &str| std::fs::read_to_string(s.path(&format!("run/logs/{node}.log"))).unwrap();
    let t0_ns: u64 =
        last_number_after(&log("sync"), "T0 = capture clock ").expect("T0 in the sync log") as u64;
    let bound =
        last_number_after(&log("mux"), "now loses at most ").expect("a bound in the mux log");
    let video = &p.video[0];
    let recovered_end = video.pts.iter().copied().fold(0.0, f64::max) + 1.0 / video.fps();
    let lost = (killed_at_ns - t0_ns) as f64 / 1e9 - recovered_end;
    assert!(
        (-1.0 / 30.0..=bound).contains(&lost),
        "{lost:.3} s lost at the end, the mux logged a bound of {bound:.3} s"
    );
    // A second recover leaves the finalized file alone.
    let again = recover(&out);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
}

/// The mux killed mid-recording is restarted and continues in take-001.mp4;
/// both files are normal MP4s, every video packet the encoder sent is
/// either in a file or counted as lost in the report, and the seconds of
/// media the report and the log say were lost are those missing from the
/// files (what the killed mux had not written yet, what went by while no mux
/// ran, and what the new one skipped to its first keyframe).
#[test]
fn a_killed_mux_continues_in_the_next_numbered_file_and_counts_the_loss() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("take.mp4");
    let mut args = small_graph_args(&[
        format!("mux.path={}", out.display()),
        "video-encode.keyframe_interval=1".into(),
    ]);
    args.extend(["--duration".to_string(), "6".to_string()]);
    let mut child = start_recording(&s, &args);
    wait_for_media(&mut child, &out, 1.0);
    let mux_pid = descendants(child.id())
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "node-mux")
        })
        .expect("the mux process");
    // SAFETY: a process of the run we started.
    unsafe { libc::kill(mux_pid as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the run survives its mux being killed: {status}"
    );

    let second = s.path("take-001.mp4");
    let (mut in_files, mut audio_in_files, mut video_s) = (0, 0, 0.0);
    for f in [&out, &second] {
        assert_eq!(faststart_problem(f), None);
        assert_plays_cleanly(f);
        in_files += video_packets(f);
        audio_in_files += stream_packets(f, "a:0");
        video_s += video_seconds(f);
    }
    let report = read_json(&s.path("report.json"));
    let mux = &report["nodes"]["mux"];
    assert_eq!(mux["restarts"], 1);
    let lost = mux["stats"]["metrics"]["lost_packets_video"]
        .as_f64()
        .expect("the loss is counted") as u64;
    let sent = report["nodes"]["video-encode"]["frames_out"]
        .as_u64()
        .unwrap();
    assert!(
        lost > 0,
        "a killed mux loses the packets sent while it was down"
    );
    assert_eq!(
        in_files + lost,
        sent,
        "{in_files} video packets in the files + {lost} counted lost = {sent} sent; mux: {mux}"
    );
    // In seconds: the video the encoder sent (30 fps) against what the
    // files play, and the AAC blocks (1024 samples at 48 kHz) likewise.
    let frame = 1.0 / 30.0;
    let video_missing = sent as f64 * frame - video_s;
    let audio_sent = report["nodes"]["audio-encode"]["frames_out"]
        .as_u64()
        .unwrap();
    let audio_missing = (audio_sent - audio_in_files) as f64 * 1024.0 / 48_000.0;
    let metric = |name: &str| mux["stats"]["metrics"][name].as_f64().unwrap_or(-1.0);
    for (track, missing) in [("video", video_missing), ("audio", audio_missing)] {
        let counted = metric(&format!("lost_seconds_{track}"));
        assert!(
            (counted - missing).abs() <= frame + 1e-3,
            "{track}: {counted:.3} s counted lost, {missing:.3} s missing from the files"
        );
    }
    let reported = mux["restart_lost_s"].as_f64().unwrap();
    let worst = video_missing.max(audio_missing);
    assert!(
        worst > 0.1 && (reported - worst).abs() <= frame + 1e-3,
        "the report says {reported:.3} s lost; {worst:.3} s are missing from the files"
    );
    let log = std::fs::read_to_string(s.path("runtime.log")).unwrap();
    let line = format!("{reported:.2} s of media) lost across the restarts");
    assert!(
        log.contains(&line),
        "the log says what the report says ({line}):\n{log}"
    );
}

/// The number that follows the last `marker` in `text`.
fn last_number_after(text: &str, marker: &str) -> Option<f64> {
    let rest = &text[text.rfind(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Kills the mux once its log says it opened its `opened`-th part (counted
/// over every incarnation). Panics (after killing `child`) if it never does.
fn kill_mux_once_it_opened(child: &mut Child, s: &Scratch, opened: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(s.path("run/logs/mux.log")).unwrap_or_default();
        if log.lines().filter(|l| l.contains(" writing ")).count() >= opened {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            kill_tree(child.id());
            panic!("the mux never opened part {opened}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mux_pid = descendants(child.id())
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "node-mux")
        })
        .expect("the mux process");
    // SAFETY: a process of the run we started.
    unsafe { libc::kill(mux_pid as i32, libc::SIGKILL) };
}

/// A mux that keeps dying right after it opened its part (before the first
/// fragment reached it) leaves no empty part file behind: every part that
/// exists plays, and the numbers have no gap.
#[test]
fn a_crash_looping_mux_leaves_no_empty_part_files() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("take.mp4");
    let mut args = small_graph_args(&[
        format!("mux.path={}", out.display()),
        "video-encode.keyframe_interval=1".into(),
    ]);
    args.extend(["--duration".to_string(), "8".to_string()]);
    let mut child = start_recording(&s, &args);
    wait_for_media(&mut child, &out, 1.0);
    // The first mux dies mid-recording; the next two as soon as they opened
    // their part; the fourth records to the end (max_restarts: 3).
    for opened in 1..=3 {
        kill_mux_once_it_opened(&mut child, &s, opened);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the run survives 3 restarts: {status}");
    let report = read_json(&s.path("report.json"));
    assert_eq!(report["nodes"]["mux"]["restarts"], 3);
    let mut parts: Vec<String> = std::fs::read_dir(s.path("."))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("take") && n.ends_with(".mp4"))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        ["take-001.mp4", "take.mp4"],
        "no part of a mux that wrote nothing"
    );
    for name in &parts {
        let path = s.path(name);
        assert_plays_cleanly(&path);
        assert!(video_seconds(&path) > 0.5, "{name} plays");
    }
}

/// Video packets stored in a file (not decoded frames: a packet cut short by
/// the kill may be stored and counted by the mux yet not decode).
fn video_packets(path: &Path) -> u64 {
    stream_packets(path, "v:0")
}

/// Packets stored in a file for one stream (`v:0`, `a:0`).
fn stream_packets(path: &Path, stream: &str) -> u64 {
    run_tool(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", stream, "-count_packets"])
            .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
            .arg(path),
    )
    .trim()
    .trim_end_matches(',')
    .parse()
    .expect("a packet count")
}

/// Parts named in the mux log: (part number, stream start, stream end).
fn logged_parts(s: &Scratch) -> Vec<(u32, f64, f64)> {
    let log = std::fs::read_to_string(s.path("run/logs/mux.log")).expect("mux log");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(" part ")? + 6..];
            let n = rest.split_whitespace().next()?.parse().ok()?;
            let times = &rest[rest.find("stream time ")? + 12..];
            let mut it = times.split_whitespace();
            let a = it.next()?.parse().ok()?;
            it.next()?;
            let b = it.next()?.parse().ok()?;
            Some((n, a, b))
        })
        .collect()
}

/// `max_duration` splits the recording into numbered files at keyframes:
/// each part starts with a keyframe where the previous one ended, and every
/// frame of the source is in exactly one part.
#[test]
fn max_duration_splits_at_keyframes_with_no_gap_or_overlap() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = s.path("in.mkv");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "5", "-c:v", "ffv1", "-c:a", "pcm_s16le", "-ac", "2"])
            .arg(&input),
    );
    let out = s.path("take.mp4");
    let source = format!("file:{}", input.display());
    let args = small_graph_args(&[
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        "video-encode.keyframe_interval=1".into(),
        "mux.max_duration=2".into(),
        format!("mux.path={}", out.display()),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(
        &s,
        &repo_graph("1080p.yaml"),
        &args,
        Duration::from_secs(120),
        "the end of the file",
    );
    let parts = logged_parts(&s);
    assert_eq!(
        parts.iter().map(|p| p.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "5 s in parts of 2 s: {parts:?}"
    );
    let files: Vec<PathBuf> = (0..3)
        .map(|n| match n {
            0 => out.clone(),
            n => s.path(&format!("take-{n:03}.mp4")),
        })
        .collect();
    let mut frames = 0;
    let mut samples = 0;
    for (i, (f, (_, start, end))) in files.iter().zip(&parts).enumerate() {
        assert_eq!(faststart_problem(f), None);
        assert_plays_cleanly(f);
        let p = probe(f).unwrap();
        let v = &p.video[0];
        frames += v.frames();
        samples += p.audio[0].samples;
        assert!(
            (v.span() - (end - start)).abs() < 0.002,
            "{}: plays {:.3} s of video, logged {start:.3}..{end:.3}",
            f.display(),
            v.span()
        );
        assert!(v.holes() == 0, "{}: {} holes", f.display(), v.holes());
        if i > 0 {
            // The stream's own timeline: this part starts where the last ended.
            assert!(
                (start - parts[i - 1].2).abs() < 1e-6,
                "part {i} starts at {start}, part {} ended at {}",
                i - 1,
                parts[i - 1].2
            );
        }
        // Each part starts with a keyframe.
        let first_key = run_tool(
            Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-select_streams",
                    "v:0",
                    "-read_intervals",
                    "%+#1",
                ])
                .args(["-show_entries", "frame=key_frame", "-of", "csv=p=0"])
                .arg(f),
        );
        assert_eq!(
            first_key.trim().trim_end_matches(','),
            "1",
            "{} starts with a keyframe",
            f.display()
        );
    }
    assert!(
        parts[0].2 - parts[0].1 >= 2.0 - 1e-6,
        "a part ends past max_duration"
    );
    assert_eq!(frames, 150, "every source frame in exactly one part");
    // The encoder's priming and its padded last frame aside, every sample is there.
    assert!(
        (samples as i64 - 240_000).abs() <= 2048,
        "{samples} audio samples in the parts, 240000 in the source"
    );
}

/// The parts of a recording to `take.mp4` in the scratch directory, in order.
fn part_files(s: &Scratch) -> Vec<PathBuf> {
    (0..)
        .map(|n| match n {
            0 => s.path("take.mp4"),
            n => s.path(&format!("take-{n:03}.mp4")),
        })
        .take_while(|f| f.exists())
        .collect()
}

/// `max_file_size` splits with every track cut at the same instant: each
/// part starts at 0 with its video and with its audio (within one AAC frame),
/// its audio ends where its video ends, the last part included, and every
/// frame and sample is in one part. 8 s of noise at 640×360 make ~2.4 MB/s,
/// so a 1 MB limit is due at once after every keyframe (1 s apart). In a
/// replay (`realtime: false`) the audio reaches the mux an encoder's
/// lookahead (~1.4 s) before the video of the same instant: the audio past
/// the cut used to be in the old part (parts starting 0.3–1.5 s into their
/// audio). `realtime: true` paces it as a live recording.
fn size_split_cuts_every_track_together(realtime: bool) {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let input = s.path("in.mkv");
    run_tool(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30,noise=alls=40:allf=t",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "8", "-c:v", "ffv1", "-c:a", "pcm_s16le", "-ac", "2"])
            .arg(&input),
    );
    let source = format!("file:{}", input.display());
    let sets = [
        "width=640".to_string(),
        "height=360".into(),
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        format!("camera.realtime={realtime}"),
        format!("microphone.realtime={realtime}"),
        "video-encode.keyframe_interval=1".into(),
        "mux.max_file_size=1".into(),
        format!("mux.path={}", s.path("take.mp4").display()),
    ];
    let args: Vec<&str> = sets.iter().flat_map(|x| ["--set", x.as_str()]).collect();
    let graph = repo_graph("1080p.yaml");
    run_to_end(
        &s,
        &graph,
        &args,
        Duration::from_secs(120),
        "the end of the file",
    );
    let files = part_files(&s);
    assert!(
        files.len() >= 5,
        "8 s of ~2.4 MB/s in 1 MB parts: {files:?}"
    );
    let aac_frame = 1024.0 / 48_000.0;
    let (mut frames, mut samples) = (0, 0);
    for f in &files {
        assert_plays_cleanly(f);
        let p = probe(f).unwrap();
        let (v, a) = (&p.video[0], p.audio.first());
        let a = a.unwrap_or_else(|| panic!("{}: no audio", f.display()));
        let video_end = v.start() + v.span();
        let shown = format!(
            "{}: video {:.3}..{video_end:.3} s, audio {:.3}..{:.3} s",
            f.display(),
            v.start(),
            a.start,
            a.end
        );
        assert!(v.start().abs() < 1e-3, "{shown}");
        assert!((-1e-3..aac_frame + 1e-3).contains(&a.start), "{shown}");
        assert!((a.end - video_end).abs() < aac_frame + 1e-3, "{shown}");
        frames += v.frames();
        samples += a.samples;
    }
    assert_eq!(frames, 240, "every source frame in exactly one part");
    assert!(
        (samples as i64 - 384_000).abs() <= 2048,
        "{samples} audio samples in the parts, 384000 in the source"
    );
}

#[test]
fn max_file_size_cuts_every_track_together_in_a_replay() {
    size_split_cuts_every_track_together(false);
}

#[test]
fn max_file_size_cuts_every_track_together_live() {
    size_split_cuts_every_track_together(true);
}

/// Runs the 5 s file graph writing `out` with `extra` sets, under `rlimit_fsize`
/// bytes of RLIMIT_FSIZE when given.
fn record_file_to(
    s: &Scratch,
    out: &Path,
    extra: &[String],
    rlimit_fsize: Option<u64>,
) -> RunResult {
    let input = s.path("in.mkv");
    if !input.exists() {
        run_tool(
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y"])
                .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
                .args(["-t", "8", "-c:v", "ffv1", "-c:a", "pcm_s16le", "-ac", "2"])
                .arg(&input),
        );
    }
    let source = format!("file:{}", input.display());
    let mut sets = vec![
        format!("camera.source={source}"),
        format!("microphone.source={source}"),
        "camera.realtime=false".into(),
        "microphone.realtime=false".into(),
        "video-encode.quality=high".into(),
        format!("mux.path={}", out.display()),
    ];
    sets.extend(extra.iter().cloned());
    let mut args = small_graph_args(&sets);
    // RLIMIT_FSIZE also bounds shared-memory segments: frames go over the socket.
    args.push("--no-shm".into());
    let mut cmd = s.runtime_run(&repo_graph("1080p.yaml"), &args);
    if let Some(limit) = rlimit_fsize {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe; runs in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    RunResult::new(cmd.output().expect("runtime runs"), &s.path("report.json"))
}

fn assert_failed_with_playable_file(r: &RunResult, out: &Path, cause: &str) {
    assert_eq!(
        r.code,
        Some(1),
        "a disk error fails the run; stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(cause) && r.stderr.contains(&out.display().to_string()),
        "the error names the cause ({cause}) and the file; stderr:\n{}",
        r.stderr
    );
    assert_eq!(r.node("mux")["restarts"], 0, "a disk error is not retried");
    assert_plays_cleanly(out);
    let seconds = video_seconds(out);
    assert!(
        seconds > 0.5,
        "{} keeps what was written ({seconds:.2} s)",
        out.display()
    );
}

/// The file size limit (EFBIG) mid-recording: exit 1, the cause named, the
/// file kept up to the error and playable, the mux not restarted.
#[test]
fn the_file_size_limit_ends_the_run_with_a_playable_file() {
    require_ffmpeg();
    let _turn = graph_tests::one_at_a_time();
    let s = Scratch::new();
    let out = s.path("big.mp4");
    let r = record_file_to(&s, &out, &[], Some(400_000));
    assert_failed_with_playable_file(&r, &out, "size limit");
}

/// A full disk: refused at the start below `min_free_space`; with the check
/// off, ENOSPC mid-recording ends the run with a playable file.
#[test]
fn a_full_disk_is_refused_at_start_and_ends_the_run_with_a_playable_file() {
    require_ffmpeg();
    let s = Scratch::new();
    let dir = s.path("small-disk");
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = is_root()
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=600k", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|st| st.success());
    if !mounted {
        let why = "needs root and `mount -t tmpfs` to make a small file system";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "on CI this test must run: it {why}"
        );
        eprintln!("skipped: this test {why}");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    let _turn = graph_tests::one_at_a_time();
    let out = dir.join("full.mp4");
    let r = record_file_to(&s, &out, &[], None);
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("MB free") && r.stderr.contains("min_free_space"),
        "refused before the start: {}",
        r.stderr
    );
    assert!(!out.exists(), "nothing written when refused");

    let r = record_file_to(&s, &out, &["mux.min_free_space=0".into()], None);
    assert_failed_with_playable_file(&r, &out, "disk is full");
}

/// A consumer restarted after its producer sent end-of-stream still gets it
/// (the producer repeats it until acknowledged), so the run ends by itself.
#[test]
fn a_restarted_consumer_still_sees_the_end_of_stream() {
    let s = Scratch::new();
    let result = s.path("sink.json");
    let graph = s.graph(
        "g.yaml",
        &format!(
            r#"
nodes:
  - id: src
    path: {{testkit}}
    params: {{ mode: source, count: 200, no_drop: true }}
    outputs: [video]
  - id: sink
    path: {{testkit}}
    params: {{ mode: sink, delay_ms: 5, crash_after: 5, crash_once: true, result: "{}" }}
    inputs: {{ video: src/video }}
    restart: on-failure
"#,
            result.display()
        ),
    );
    // Over the socket, like encoded packets (a source's shared-memory pool
    // would wait for the buffers the crashed sink held).
    let (r, hung) = run_with_limit(&s, &graph, &["--no-shm"], Duration::from_secs(60));
    assert!(
        !hung,
        "the restarted sink never saw end-of-stream; stderr:\n{}",
        r.stderr
    );
    r.assert_ok();
    assert_eq!(r.node("sink")["restarts"], 1, "{}", r.stderr);
    assert_eq!(read_json(&result)["end_of_stream"], 1);
}
