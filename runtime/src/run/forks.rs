//! Built-in nodes started as forks of one pre-linked process.
//!
//! Exec'ing `mediagraph-nodes` costs each node ~50–65 ms of CPU before its
//! `main` (the loader maps and binds ~200 shared libraries); a run of nine
//! nodes spent ~0.5 s of CPU on it, ffmpeg's one process ~0.05 s. The runtime
//! starts `mediagraph-nodes --fork-server` once, at the start of a run, and
//! asks it for each built-in node: a fork of an already linked process (see
//! that binary's `fork_server` module for the protocol). The nodes are the
//! server's children, so it reaps them and reports how each ended.
//!
//! `MEDIAGRAPH_FORK_SERVER=off` starts every node with its own exec, as
//! before; a server that fails or dies mid-run makes the next starts fall
//! back to exec too.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::child::NodeChild;

/// The environment switch that turns the fork server off.
pub const FORK_SERVER_ENV: &str = "MEDIAGRAPH_FORK_SERVER";

/// How long a fork may take before the server is judged stuck.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of command line kept free for the nodes' own (node ids are short).
const COMMAND_LINE_ROOM: usize = 200;

/// The server's answer to one request.
enum Answer {
    Started(u32),
    Failed(String),
}

/// Nodes whose end is awaited, and ends that came before anyone awaited them.
#[derive(Default)]
struct Ends {
    waiting: HashMap<u32, oneshot::Sender<io::Result<ExitStatus>>>,
    ended: HashMap<u32, i32>,
    /// The server is gone: nothing more will end through it.
    closed: bool,
}

/// A running fork server.
pub(super) struct ForkServer {
    program: PathBuf,
    sock: OwnedFd,
    /// Held across a request and its answer: answers come in request order.
    answers: Mutex<mpsc::Receiver<Answer>>,
    ends: Arc<Mutex<Ends>>,
    server: tokio::sync::Mutex<Option<tokio::process::Child>>,
}

impl ForkServer {
    /// Starts the server from `program` (the built-in nodes' binary), unless
    /// `MEDIAGRAPH_FORK_SERVER=off`; `None` (after a warning) when it cannot start.
    pub fn start(program: &Path) -> Option<ForkServer> {
        if std::env::var(FORK_SERVER_ENV).is_ok_and(|v| v == "off" || v == "0") {
            return None;
        }
        match Self::try_start(program) {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::warn!("no fork server ({e}): every node is started with its own exec");
                None
            }
        }
    }

    fn try_start(program: &Path) -> io::Result<ForkServer> {
        let (ours, theirs) = seqpacket_pair()?;
        let mut cmd = tokio::process::Command::new(program);
        // Room for each forked node to show `mediagraph-nodes KIND ...
        // --node-id ID` as its command line (see the server's `show_as`).
        cmd.arg("--fork-server")
            .arg(" ".repeat(COMMAND_LINE_ROOM))
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe. The server dies with the
        // runtime, and its nodes with it (their own parent-death signal).
        unsafe {
            cmd.as_std_mut().pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let server = crate::spawn_retrying_busy(|| cmd.spawn())?;
        let (answer_tx, answers) = mpsc::channel();
        let ends = Arc::new(Mutex::new(Ends::default()));
        let reader = ours.try_clone()?;
        let ends_seen = ends.clone();
        std::thread::Builder::new()
            .name("fork-server".into())
            .spawn(move || read_answers(reader, answer_tx, ends_seen))?;
        Ok(ForkServer {
            program: program.to_path_buf(),
            sock: ours,
            answers: Mutex::new(answers),
            ends,
            server: tokio::sync::Mutex::new(Some(server)),
        })
    }

    /// Whether nodes run by `program` can be forked here.
    pub fn serves(&self, program: &Path) -> bool {
        self.program == program
    }

    /// Forks a node: `args` (its kind first) and its whole environment.
    pub fn spawn(&self, args: Vec<String>, env: Vec<(String, String)>) -> io::Result<NodeChild> {
        let cwd = std::env::current_dir()?.to_string_lossy().into_owned();
        let request = serde_json::to_vec(&(args, env, cwd))?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let null: OwnedFd = std::fs::File::open("/dev/null")?.into();
        let answers = self.answers.lock().unwrap();
        send_with_fds(&self.sock, &request, &[&null, &out_w, &err_w])?;
        drop((null, out_w, err_w));
        let pid = match answers.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Answer::Started(pid)) => pid,
            Ok(Answer::Failed(e)) => return Err(io::Error::other(e)),
            Err(_) => return Err(io::Error::other("the fork server did not answer")),
        };
        drop(answers);
        let (tx, rx) = oneshot::channel();
        let mut ends = self.ends.lock().unwrap();
        if let Some(status) = ends.ended.remove(&pid) {
            let _ = tx.send(Ok(ExitStatus::from_raw(status)));
        } else if ends.closed {
            let _ = tx.send(Err(server_gone()));
        } else {
            ends.waiting.insert(pid, tx);
        }
        Ok(NodeChild::forked(pid, out_r, err_r, rx))
    }

    /// Lets the server go once its nodes have ended, and reaps it (so that
    /// its nodes' CPU time counts in the runtime's children's).
    pub async fn finish(&self) {
        // SAFETY: shutting down the write side of our own socket: the
        // server reads its end and exits when no node is left.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
        if let Some(mut server) = self.server.lock().await.take() {
            let _ = server.wait().await;
        }
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        // SAFETY: as in `finish`.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
    }
}

fn server_gone() -> io::Error {
    io::Error::other("its fork server was killed, which ended it; its status went with the server")
}

/// Reads the server's messages until it ends: answers go to the requester,
/// ends to whoever waits for that node.
fn read_answers(sock: OwnedFd, answers: mpsc::Sender<Answer>, ends: Arc<Mutex<Ends>>) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: receiving into a buffer we own.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        match parse(&text) {
            Some(Message::Answer(a)) => {
                let _ = answers.send(a);
            }
            Some(Message::Ended(pid, status)) => {
                let mut ends = ends.lock().unwrap();
                match ends.waiting.remove(&pid) {
                    Some(tx) => {
                        let _ = tx.send(Ok(ExitStatus::from_raw(status)));
                    }
                    None => {
                        ends.ended.insert(pid, status);
                    }
                }
            }
            None => tracing::warn!("fork server: unexpected message `{text}`"),
        }
    }
    let orphans: Vec<_> = {
        let mut ends = ends.lock().unwrap();
        ends.closed = true;
        ends.waiting.drain().collect()
    };
    // The server was killed: its nodes had their parent-death signal
    // (SIGTERM) and are ending. Their statuses went with the server; what
    // can still be known is when each has gone, so that none is restarted
    // while its old incarnation runs.
    for (pid, tx) in orphans {
        wait_gone(pid);
        let _ = tx.send(Err(server_gone()));
    }
}

/// Blocks until process `pid` (not our child) has ended.
fn wait_gone(pid: u32) {
    // SAFETY: pidfd_open returns a new descriptor we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if fd < 0 {
        return; // already gone (ESRCH)
    }
    // SAFETY: just opened, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // A pidfd is readable once its process has ended.
    // SAFETY: polling one pollfd we own.
    while unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {}
}

enum Message {
    Answer(Answer),
    Ended(u32, i32),
}

/// `S <pid>`, `E <error>`, `X <pid> <wait status>`.
fn parse(text: &str) -> Option<Message> {
    let (tag, rest) = text.split_once(' ')?;
    match tag {
        "S" => Some(Message::Answer(Answer::Started(rest.parse().ok()?))),
        "E" => Some(Message::Answer(Answer::Failed(rest.to_string()))),
        "X" => {
            let (pid, status) = rest.split_once(' ')?;
            Some(Message::Ended(pid.parse().ok()?, status.parse().ok()?))
        }
        _ => None,
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills the two descriptors we then own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pipe (read end, write end), closed on exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one packet with descriptors attached (SCM_RIGHTS).
fn send_with_fds(sock: &OwnedFd, data: &[u8], fds: &[&OwnedFd]) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let bytes = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: the header points at buffers that outlive the call; the
    // control buffer is large and aligned enough for one SCM_RIGHTS message.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(bytes as u32) as usize;
        std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast(), raw.len());
        loop {
            if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_servers_messages() {
        assert!(matches!(
            parse("S 42"),
            Some(Message::Answer(Answer::Started(42)))
        ));
        assert!(
            matches!(parse("E fork: no memory"), Some(Message::Answer(Answer::Failed(e))) if e == "fork: no memory")
        );
        assert!(matches!(parse("X 42 256"), Some(Message::Ended(42, 256))));
        assert!(parse("S x").is_none());
        assert!(parse("Q 1").is_none());
    }
}
