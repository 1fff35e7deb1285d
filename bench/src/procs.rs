//! A process tree seen through /proc: who is in it, how much memory each
//! process really uses, and the whole tree's CPU time once it has exited.
//!
//! Memory is Pss (proportional set size, `/proc/PID/smaps_rollup`): a page
//! mapped by n processes counts 1/n in each, so the sum over a graph counts
//! every shared-memory frame pool once. Summed RSS would count a pool in the
//! producer and in every consumer.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A `Field:   123 kB` line of a /proc status-like file, in KiB.
pub fn read_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident and proportional memory of one process, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub pss_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        Some(Memory {
            rss_kib: read_kib(&status, "VmRSS:")?,
            pss_kib: read_kib(&rollup, "Pss:")?,
        })
    }
}

/// A process and all its descendants.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        // Children are listed per thread: a multi-threaded parent (the
        // runtime) may spawn from any of its threads.
        let tasks = std::fs::read_dir(format!("/proc/{}/task", pids[i]));
        for task in tasks.into_iter().flatten().flatten() {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                pids.extend(
                    children
                        .split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    pids
}

/// The graph node id of a mediagraph node process: in its environment when
/// the runtime exec'd it, in its command line when the fork server forked it.
pub fn node_id(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let from_env = env
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"MEDIAGRAPH_NODE_ID="));
    if let Some(id) = from_env {
        return Some(String::from_utf8_lossy(id).into_owned());
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut words = cmdline.split(|b| *b == 0);
    words.find(|w| *w == node_catalog::NODE_ID_FLAG.as_bytes())?;
    Some(String::from_utf8_lossy(words.next()?).into_owned())
}

/// What a process in the tree is: its graph node id for mediagraph nodes,
/// else its command name.
pub fn process_name(pid: u32) -> Option<String> {
    if let Some(id) = node_id(pid) {
        return Some(id);
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim().to_string())
}

/// The graph nodes under a runtime process: pid → node id.
pub fn nodes_of(runtime: u32) -> BTreeMap<u32, String> {
    descendants(runtime)
        .into_iter()
        .filter(|&pid| pid != runtime)
        .filter_map(|pid| Some((pid, node_id(pid)?)))
        .collect()
}

/// Peak memory of a process tree, from samples taken while it ran.
#[derive(Debug, Clone, Default)]
pub struct Peaks {
    /// Highest sum of Pss over the tree at one sample.
    pub pss_sum_kib: u64,
    /// Highest sum of RSS over the tree at one sample (shared pages counted
    /// once per process that maps them).
    pub rss_sum_kib: u64,
    /// Highest Pss of each process, by [`process_name`].
    pub pss_by_name: BTreeMap<String, u64>,
    pub samples: u64,
}

impl Peaks {
    fn add_sample(&mut self, tree: &[(String, Memory)]) {
        let pss: u64 = tree.iter().map(|(_, m)| m.pss_kib).sum();
        let rss: u64 = tree.iter().map(|(_, m)| m.rss_kib).sum();
        self.pss_sum_kib = self.pss_sum_kib.max(pss);
        self.rss_sum_kib = self.rss_sum_kib.max(rss);
        for (name, m) in tree {
            let peak = self.pss_by_name.entry(name.clone()).or_default();
            *peak = (*peak).max(m.pss_kib);
        }
        self.samples += 1;
    }
}

/// Samples the memory of `root`'s process tree every `interval` on a thread
/// until dropped (or [`Sampler::finish`]ed).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(root: u32, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let thread = {
            let (stop, peaks) = (stop.clone(), peaks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Names are read at every sample: right after fork a node
                    // still has the runtime's environment.
                    let tree: Vec<(String, Memory)> = descendants(root)
                        .into_iter()
                        .filter_map(|pid| Some((process_name(pid)?, Memory::of(pid)?)))
                        .collect();
                    if !tree.is_empty() {
                        peaks.lock().expect("sampler lock").add_sample(&tree);
                    }
                    std::thread::sleep(interval);
                }
            })
        };
        Sampler {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the peaks seen.
    pub fn finish(mut self) -> Peaks {
        self.halt();
        self.peaks.lock().expect("sampler lock").clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One finished run of a command, measured from outside.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub wall: Duration,
    /// User + system CPU seconds of the process and every descendant it
    /// waited for (wait4's rusage, like RUSAGE_CHILDREN).
    pub cpu_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// Largest RSS of any single process of the tree (ru_maxrss), KiB.
    pub max_single_rss_kib: u64,
    pub peaks: Peaks,
}

/// Runs `cmd` to its end, sampling its tree's memory every `interval`.
pub fn run_measured(cmd: &mut Command, interval: Duration) -> Result<Measured> {
    let started = Instant::now();
    let child: Child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = child.id();
    let sampler = Sampler::start(pid, interval);
    let mut status = 0i32;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `status` and `usage` outlive the call.
    // The `Child` is never waited on through std, so the pid is reaped once.
    let r = loop {
        let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break r;
        }
    };
    let wall = started.elapsed();
    let peaks = sampler.finish();
    if r < 0 {
        bail!("waiting for pid {pid}: {}", std::io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (user_s, sys_s) = (secs(usage.ru_utime), secs(usage.ru_stime));
    Ok(Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        wall,
        cpu_s: user_s + sys_s,
        user_s,
        sys_s,
        max_single_rss_kib: usage.ru_maxrss as u64,
        peaks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let text = "Name:\tx\nVmRSS:\t  1234 kB\nPss:  77 kB\n";
        assert_eq!(read_kib(text, "VmRSS:"), Some(1234));
        assert_eq!(read_kib(text, "Pss:"), Some(77));
        assert_eq!(read_kib(text, "VmHWM:"), None);
    }

    #[test]
    fn measures_a_tree_with_a_busy_child() {
        // A shell whose child burns CPU for a while: the child's CPU counts,
        // and both processes show up in the samples.
        let m = run_measured(
            Command::new("sh").args([
                "-c",
                "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; exit 3",
            ]),
            Duration::from_millis(10),
        )
        .unwrap();
        assert_eq!(m.code, Some(3));
        assert!(m.cpu_s > 0.05, "cpu {}", m.cpu_s);
        assert!(m.peaks.samples > 0);
        assert!(m.peaks.pss_sum_kib > 0);
        assert!(m.peaks.rss_sum_kib >= m.peaks.pss_sum_kib);
        assert!(m.peaks.pss_by_name.contains_key("sh"));
    }
}
