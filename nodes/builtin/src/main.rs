//! `mediagraph-nodes KIND [ARGS]`: the built-in nodes, one executable.
//!
//! The runtime starts it once per node of a graph (`mediagraph-nodes camera`,
//! `mediagraph-nodes mux`, ...): still one OS process per node, but the
//! processes of a run share one copy of the code in memory (nine binaries each
//! kept ~9 MiB of their own resident) and the workspace links one binary
//! instead of nine. Each kind's code is its own crate under `nodes/`.

use std::process::ExitCode;

/// A node's `main`, given the arguments after its kind.
type Entry = fn(&[String]);

/// Every built-in kind and its entry point.
const KINDS: &[(&str, Entry)] = &[
    ("camera", node_camera::main),
    ("screen", node_camera::screen_main),
    ("microphone", node_microphone::main),
    ("video-normalize", node_video_normalize::main),
    ("audio-normalize", node_audio_normalize::main),
    ("noise-suppress", node_noise_suppress::main),
    ("audio-mix", node_audio_mix::main),
    ("sync", node_sync::main),
    ("compose", node_compose::main),
    ("video-encode", node_video_encode::main),
    ("video-decode", node_video_decode::main),
    ("audio-encode", node_audio_encode::main),
    ("mux", node_mux::main),
    ("stream", node_stream::stream_main),
    ("hls", node_stream::hls_main),
    ("replay-buffer", node_stream::replay_main),
];

mod fork_server;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("--fork-server") => {
            name_process("node-forks");
            fork_server::serve(run_node)
        }
        Some(flag) if flag == node_api::snapshot::JPEG_SERVER_FLAG => {
            name_process("node-jpeg");
            let (stdin, stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
            match node_media::jpeg::serve(stdin, std::io::BufWriter::new(stdout)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("mediagraph-nodes {flag}: {e:#}");
                    1
                }
            }
        }
        _ => run_node(&args),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Runs the node `args` names (its kind, then its arguments) to its end: the
/// process's exit status. A node's process starts here whether exec'd or
/// forked by the fork server.
fn run_node(args: &[String]) -> i32 {
    let kind = args.first().map(String::as_str).unwrap_or_default();
    let Some((_, entry)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        eprintln!(
            "usage: mediagraph-nodes KIND [ARGS]\n\
             runs one built-in node; `runtime run` starts these, with the node's \
             config in its environment.\nkinds: {}",
            kinds.join(", ")
        );
        return 2;
    };
    name_process(&format!("node-{kind}"));
    entry(&args[1..]);
    0
}

/// Names the process `node-KIND` (what `ps`, `top` and /proc/PID/comm show;
/// the kernel keeps 15 bytes), so the nodes of a run stay told apart. Before
/// any thread starts: threads take the name of the thread that made them.
fn name_process(name: &str) {
    let mut bytes = name.as_bytes()[..name.len().min(15)].to_vec();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_kind_has_an_entry_point() {
        let mut catalog: Vec<&str> = node_catalog::builtin_kinds()
            .iter()
            .filter(|k| !k.hosted)
            .map(|k| k.kind)
            .collect();
        let mut here: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        catalog.sort();
        here.sort();
        assert_eq!(catalog, here);
    }
}
