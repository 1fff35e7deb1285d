//! Several "hosts" on one machine for the distributed tests: one Linux network
//! namespace per host, linked to a hub host by veth pairs, and every process
//! of a host run in its own mount and IPC namespaces with a private
//! `/dev/shm` (so no shared memory crosses hosts) and, optionally, its own
//! time namespace with CLOCK_MONOTONIC shifted (a host whose clock differs).
//! Needs root (as CI runs); [`unavailable`] says why it cannot be used.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{descendants, is_root, runtime_bin, RunResult};

/// `None` when network, mount, IPC and time namespaces can be created here;
/// otherwise why not (checked once per test binary).
pub fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    let name = format!("mgprobe{}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &name]) {
        return Some(format!("`ip netns add` is not permitted or missing: {e}"));
    }
    let inside = host_command(
        &name,
        Some(1),
        "cat /proc/self/timens_offsets && ls /dev/shm",
    )
    .output()
    .map_err(|e| e.to_string())
    .and_then(|o| {
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    });
    let _ = ip(&["netns", "del", &name]);
    match inside {
        Ok(text) if text.contains("monotonic") && text.contains(" 1 ") => None,
        Ok(text) => Some(format!(
            "the time namespace did not shift the clock: {text}"
        )),
        Err(e) => Some(format!("mount/IPC/time namespaces are not permitted: {e}")),
    }
}

/// `tc ARGS` inside network namespace `ns`.
fn tc(ns: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .output()
        .map_err(|e| format!("tc {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `sh -c SCRIPT` inside network namespace `netns`, in fresh mount, IPC
/// (and, with `monotonic_s`, time) namespaces with a private `/dev/shm`.
fn host_command(netns: &str, monotonic_s: Option<i64>, script: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, "unshare", "--mount", "--ipc"])
        .args(["--propagation", "private", "--fork"]);
    if let Some(s) = monotonic_s {
        cmd.args(["--time", "--monotonic", &s.to_string()]);
    }
    cmd.args([
        "sh",
        "-c",
        &format!("mount -t tmpfs -o mode=1777 tmpfs /dev/shm && {script}"),
    ]);
    cmd
}

/// A hub host and spokes, each spoke linked to the hub by a veth pair
/// (spoke i: 10.77.i.1, hub side 10.77.i.2). Removed on drop, even on panic.
pub struct Hosts {
    names: Vec<(String, String)>,
    /// Per spoke: (its interface, the hub's interface of its link).
    links: Vec<(String, String)>,
    /// Environment variables per host: (host, name, value).
    env: Vec<(String, String, String)>,
}

/// What [`Hosts::shape`] could put on a link.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    pub rate_mbit: u32,
    /// `None`: this kernel has no netem, so no delay could be added.
    pub delay_ms: Option<u32>,
}

/// Spoke `i`'s address (1-based), and the hub's address on that link.
pub fn spoke_addr(i: usize) -> String {
    format!("10.77.{i}.1")
}

pub fn hub_addr(i: usize) -> String {
    format!("10.77.{i}.2")
}

impl Hosts {
    /// Hosts named `names`; the last one is the hub.
    pub fn new(names: &[&str]) -> Hosts {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "mg{}{}",
            std::process::id() % 100_000,
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let mut hosts = Hosts {
            names: Vec::new(),
            links: Vec::new(),
            env: Vec::new(),
        };
        for n in names {
            let ns = format!("{tag}{n}");
            ip(&["netns", "add", &ns]).expect("creating a network namespace");
            ip(&["-n", &ns, "link", "set", "lo", "up"]).unwrap();
            hosts.names.push((n.to_string(), ns));
        }
        let hub = hosts.names.last().unwrap().1.clone();
        for (i, (_, ns)) in hosts.names[..names.len() - 1].iter().enumerate() {
            let i = i + 1;
            // Interface names are limited to 15 bytes.
            let (spoke_if, hub_if) = (format!("{tag}s{i}"), format!("{tag}h{i}"));
            ip(&[
                "link", "add", &spoke_if, "netns", ns, "type", "veth", "peer", "name", &hub_if,
                "netns", &hub,
            ])
            .unwrap();
            for (ns, ifname, addr) in [(ns, &spoke_if, spoke_addr(i)), (&hub, &hub_if, hub_addr(i))]
            {
                ip(&[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    ifname,
                ])
                .unwrap();
                ip(&["-n", ns, "link", "set", ifname, "up"]).unwrap();
            }
            hosts.links.push((spoke_if, hub_if));
        }
        hosts
    }

    /// Spoke `host`'s link to the hub: (spoke namespace, its interface,
    /// hub namespace, the hub's interface).
    fn link_of(&self, host: &str) -> (String, String, String, String) {
        let i = self.names.iter().position(|(n, _)| n == host).unwrap();
        let (spoke_if, hub_if) = self.links[i].clone();
        let hub = self.names.last().unwrap().1.clone();
        (self.names[i].1.clone(), spoke_if, hub, hub_if)
    }

    /// Limits spoke `host`'s link to the hub, both ways, to `rate_mbit`
    /// with `delay_ms` each way: netem where the kernel has it, else a
    /// token bucket (rate only; the result says no delay was added).
    pub fn shape(&self, host: &str, rate_mbit: u32, delay_ms: u32) -> Shaping {
        let (ns, spoke_if, hub, hub_if) = self.link_of(host);
        let rate = format!("{rate_mbit}mbit");
        let mut delayed = true;
        for (ns, ifname) in [(&ns, &spoke_if), (&hub, &hub_if)] {
            let netem = tc(
                ns,
                &[
                    "qdisc",
                    "add",
                    "dev",
                    ifname,
                    "root",
                    "netem",
                    "rate",
                    &rate,
                    "delay",
                    &format!("{delay_ms}ms"),
                    "limit",
                    "10000",
                ],
            );
            if netem.is_err() {
                delayed = false;
                // Bursts of one 4 ms tick at the rate; a queue of 100 ms.
                let burst = format!("{}kb", (rate_mbit as u64 * 1000 / 8 / 250).max(16));
                tc(
                    ns,
                    &[
                        "qdisc", "add", "dev", ifname, "root", "tbf", "rate", &rate, "burst",
                        &burst, "latency", "100ms",
                    ],
                )
                .expect("limiting a link's rate with tc");
            }
        }
        Shaping {
            rate_mbit,
            delay_ms: delayed.then_some(delay_ms),
        }
    }

    /// Takes spoke `host`'s link down (`false`) or up again: a network cut.
    pub fn set_link(&self, host: &str, up: bool) {
        let (ns, spoke_if, _, _) = self.link_of(host);
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            &spoke_if,
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }

    /// Bytes spoke `host` has sent on its link to the hub.
    pub fn tx_bytes(&self, host: &str) -> u64 {
        let (ns, spoke_if, _, _) = self.link_of(host);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "cat"])
            .arg(format!("/sys/class/net/{spoke_if}/statistics/tx_bytes"))
            .output()
            .expect("reading a link's counters");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Sets `name=value` for every process later started on `host` (e.g. a
    /// clock running fast: node_api::clock::simulated).
    pub fn set_env(&mut self, host: &str, name: &str, value: &str) {
        self.env
            .push((host.to_string(), name.to_string(), value.to_string()));
    }

    fn netns(&self, host: &str) -> &str {
        &self.names.iter().find(|(n, _)| n == host).unwrap().1
    }

    /// Starts `runtime run GRAPH --machine HOST ARGS` on `host` (its clock
    /// `monotonic_s` seconds ahead), in `dir`, with its report and run
    /// directory there under the host's name.
    pub fn run(
        &self,
        host: &str,
        monotonic_s: Option<i64>,
        dir: &Path,
        graph: &Path,
        args: &[&str],
    ) -> Machine {
        let report = dir.join(format!("report-{host}.json"));
        let run_dir = dir.join(format!("run-{host}"));
        let mut line = format!(
            "exec {} run {} --machine {host} --report {} --run-dir {}",
            runtime_bin().display(),
            graph.display(),
            report.display(),
            run_dir.display()
        );
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        let stderr_path = dir.join(format!("stderr-{host}.txt"));
        let env = self.env.iter().filter(|(h, ..)| h == host);
        let child = host_command(self.netns(host), monotonic_s, &line)
            .envs(env.map(|(_, k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("starting a runtime on a host");
        Machine {
            host: host.to_string(),
            child,
            report,
            stderr_path,
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth ends (and their peers).
        for (_, ns) in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// One host's `runtime run`.
pub struct Machine {
    pub host: String,
    child: Child,
    report: PathBuf,
    stderr_path: PathBuf,
}

impl Machine {
    pub fn stderr(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits until its stderr contains `text` (false after `limit`).
    pub fn wait_for_log(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stderr().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The `runtime` process itself (under `ip netns exec`, `unshare`, `sh`).
    pub fn runtime_pid(&self) -> Option<u32> {
        descendants(self.child.id()).into_iter().find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "runtime")
        })
    }

    /// Sends `signal` to the runtime.
    pub fn signal(&self, signal: i32) {
        let pid = self.runtime_pid().expect("the runtime is running");
        // SAFETY: signalling a process we started.
        unsafe { libc::kill(pid as i32, signal) };
    }

    /// SIGKILL to the runtime and every node at once: the host dies.
    pub fn kill_all(&mut self) {
        crate::kill_tree(self.child.id());
        let _ = self.child.wait();
    }

    /// Waits for the runtime to end; after `limit` it is killed and the
    /// result says so (`code` None).
    pub fn wait(mut self, limit: Duration) -> RunResult {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                crate::kill_tree(self.child.id());
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: self.stderr().into_bytes(),
        };
        RunResult::new(output, &self.report)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            crate::kill_tree(self.child.id());
            let _ = self.child.wait();
        }
    }
}
