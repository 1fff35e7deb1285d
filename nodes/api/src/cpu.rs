//! Where a node process's CPU time went, for the report (`cpu_phases`,
//! `cpu_threads` of [`crate::NodeStats`]): the process's CPU at a few points
//! of its life, and how the part spent moving media split between its
//! threads. The bench compares it with a single ffmpeg process.
//!
//! Every point is taken once per process, from a few places (first one
//! wins), so the per-message path only reads an atomic: no system call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A point of a node's life at which the process's CPU is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// `run_main` or `Node::init`, whichever comes first: what came before
    /// is exec and dynamic linking (rusage counts the loader's time).
    Entry,
    /// Consumers subscribed and the runtime told: config, session and codec
    /// set up.
    Armed,
    /// The graph started (the end of the runtime's barrier), as seen here.
    Started,
    /// The first message received or sent.
    FirstMessage,
    /// Every input ended, or a source finishing after its last frame.
    EndOfStream,
    /// The last stats, as the node finishes.
    End,
}

const MARKS: [Mark; 6] = [
    Mark::Entry,
    Mark::Armed,
    Mark::Started,
    Mark::FirstMessage,
    Mark::EndOfStream,
    Mark::End,
];

/// The keys of a node's `cpu_phases`, in the order it reaches them (one per
/// [`Mark`], in its order).
pub const CPU_PHASES: [&str; 6] = [
    "entry",
    "armed",
    "started",
    "first_message",
    "end_of_stream",
    "end",
];

impl Mark {
    /// Its key in `cpu_phases`.
    pub fn name(self) -> &'static str {
        CPU_PHASES[self as usize]
    }
}

/// Not read yet (no CPU time has these bits).
const UNSET: u64 = u64::MAX;

/// The process's CPU seconds at each mark, as f64 bits.
static AT: [AtomicU64; 6] = [const { AtomicU64::new(UNSET) }; 6];

/// Each thread's CPU at the first message; replaced by the split of the
/// window (first message → end of stream) once it ends.
static THREADS: Mutex<Window> = Mutex::new(Window::NotStarted);

enum Window {
    NotStarted,
    Open(Vec<ThreadCpu>),
    Closed(BTreeMap<String, f64>),
}

/// Reads the process's CPU for `mark` unless it was read already. Cheap
/// after the first time: one atomic load.
pub(crate) fn mark(mark: Mark) {
    let slot = &AT[mark as usize];
    if slot.load(Ordering::Relaxed) != UNSET {
        return;
    }
    let now = crate::stats::cpu_seconds().to_bits();
    if slot
        .compare_exchange(UNSET, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // The thread split covers the time the node moved media: before, the
    // phases say it all; after, its tail is one phase too.
    match mark {
        Mark::FirstMessage => {
            // A message is proof the graph started, if the runtime's word
            // has not arrived yet (it comes by another path).
            self::mark(Mark::Started);
            let mut w = THREADS.lock().unwrap();
            if matches!(*w, Window::NotStarted) {
                *w = Window::Open(threads());
            }
        }
        Mark::EndOfStream => {
            let mut w = THREADS.lock().unwrap();
            if let Window::Open(start) = &*w {
                let window = f64::from_bits(now) - at(Mark::FirstMessage).unwrap_or(0.0);
                *w = Window::Closed(split(start, &threads(), window));
            }
        }
        _ => {}
    }
}

fn at(mark: Mark) -> Option<f64> {
    let bits = AT[mark as usize].load(Ordering::Relaxed);
    (bits != UNSET).then(|| f64::from_bits(bits))
}

/// The marks read so far: name → process CPU seconds.
pub(crate) fn phases() -> BTreeMap<String, f64> {
    MARKS
        .iter()
        .filter_map(|m| Some((m.name().to_string(), at(*m)?)))
        .collect()
}

/// The window's thread split, once the window closed (else empty).
pub(crate) fn thread_groups() -> BTreeMap<String, f64> {
    match &*THREADS.lock().unwrap() {
        Window::Closed(groups) => groups.clone(),
        _ => BTreeMap::new(),
    }
}

/// What a thread is, by its name (codec libraries' workers inherit the
/// name of the thread that made them: the process's, `node-KIND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// zenoh's runtimes (`app-0`, `acc-0`, `tx-0`, `rx-0`, `rx-1`,
    /// `net-0`) and its shared-memory watchdogs.
    Zenoh,
    /// The node API's own (the stats publisher).
    NodeApi,
    /// The process's first thread: the node's event loop, and whatever it
    /// calls (a codec run on the caller's thread included).
    Main,
    /// Anything else: codec workers (x264, FFV1 slices, ...).
    Other,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Zenoh => "zenoh",
            Group::NodeApi => "node_api",
            Group::Main => "main",
            Group::Other => "other",
        }
    }
}

/// The group of thread `tid` named `comm` in process `pid`.
pub(crate) fn group_of(tid: u32, pid: u32, comm: &str) -> Group {
    if tid == pid {
        return Group::Main;
    }
    if comm == "stats" {
        return Group::NodeApi;
    }
    // The kernel keeps 15 bytes of a name: "Watchdog Confir", "Watchdog Valida".
    let runtime = comm.split_once('-').is_some_and(|(rt, n)| {
        ["app", "acc", "tx", "rx", "net"].contains(&rt)
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    });
    if runtime || comm.starts_with("Watchdog ") {
        return Group::Zenoh;
    }
    Group::Other
}

#[derive(Debug, Clone, PartialEq)]
struct ThreadCpu {
    tid: u32,
    comm: String,
    seconds: f64,
}

/// Each thread's CPU per group, over a window: `end` minus `start` per
/// thread (a thread born since counts whole). Threads that ended within
/// the window are gone from `end`: their time goes to `other`, so the
/// groups add up to the process's `window` seconds.
fn split(start: &[ThreadCpu], end: &[ThreadCpu], window: f64) -> BTreeMap<String, f64> {
    let pid = std::process::id();
    let mut groups = BTreeMap::new();
    for t in end {
        let before = start
            .iter()
            .find(|s| s.tid == t.tid)
            .map_or(0.0, |s| s.seconds);
        let g = group_of(t.tid, pid, &t.comm);
        *groups.entry(g.name().to_string()).or_insert(0.0) += (t.seconds - before).max(0.0);
    }
    let named: f64 = groups
        .iter()
        .filter(|(g, _)| *g != Group::Other.name())
        .map(|(_, s)| s)
        .sum();
    groups.insert(Group::Other.name().into(), window - named);
    groups
}

/// Every thread of this process and its CPU seconds, from /proc.
fn threads() -> Vec<ThreadCpu> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            Some(ThreadCpu {
                tid,
                comm: comm.trim_end().to_string(),
                seconds: thread_seconds(&e.path())?,
            })
        })
        .collect()
}

/// A thread's CPU seconds: schedstat's nanoseconds (exact), else stat's
/// clock ticks (10 ms steps: over dozens of threads that would blur).
fn thread_seconds(task: &std::path::Path) -> Option<f64> {
    if let Ok(s) = std::fs::read_to_string(task.join("schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            return Some(ns as f64 / 1e9);
        }
    }
    let s = std::fs::read_to_string(task.join("stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_grouped_by_name_and_the_first_is_main() {
        let pid = 100;
        assert_eq!(group_of(100, pid, "node-video-enc"), Group::Main);
        assert_eq!(group_of(101, pid, "node-video-enc"), Group::Other);
        assert_eq!(group_of(102, pid, "stats"), Group::NodeApi);
        for z in ["rx-0", "rx-1", "tx-0", "net-0", "acc-0", "app-12"] {
            assert_eq!(group_of(103, pid, z), Group::Zenoh, "{z}");
        }
        assert_eq!(group_of(104, pid, "Watchdog Confir"), Group::Zenoh);
        assert_eq!(group_of(105, pid, "rx-"), Group::Other);
        assert_eq!(group_of(106, pid, "node-mux"), Group::Other);
        assert_eq!(group_of(107, pid, "tokio-runtime-w"), Group::Other);
    }

    #[test]
    fn the_split_adds_up_to_the_window_with_ended_threads_in_other() {
        let pid = std::process::id();
        let t = |tid, comm: &str, seconds| ThreadCpu {
            tid,
            comm: comm.into(),
            seconds,
        };
        let start = [
            t(pid, "node-x", 1.0),
            t(2, "rx-0", 0.5),
            t(3, "node-x", 0.25),
        ];
        // Thread 3 (a codec worker) ended; 4 (another) was born.
        let end = [
            t(pid, "node-x", 3.0),
            t(2, "rx-0", 1.0),
            t(4, "node-x", 0.5),
        ];
        let g = split(&start, &end, 4.0);
        assert_eq!(g["main"], 2.0);
        assert_eq!(g["zenoh"], 0.5);
        assert_eq!(g["other"], 1.5, "{g:?}");
        assert_eq!(g.values().sum::<f64>(), 4.0);
    }

    #[test]
    fn this_process_reads_its_own_threads() {
        let me = threads();
        let main = me.iter().find(|t| t.tid == std::process::id());
        assert!(me.iter().all(|t| t.seconds >= 0.0), "{me:?}");
        // The test harness runs tests on threads of its own; the main one
        // is there all the same.
        assert!(main.is_some(), "{me:?}");
    }
}
