//! A node process as the supervisor holds it, whether it was exec'd by the
//! runtime or forked by the fork server (see `forks`).

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;

use tokio::io::AsyncRead;
use tokio::sync::oneshot;

/// One of a node's output streams (stdout or stderr).
pub(super) type Output = Box<dyn AsyncRead + Unpin + Send>;

pub(super) struct NodeChild {
    pid: u32,
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    end: End,
}

enum End {
    /// The runtime's own child: tokio waits for it.
    Exec(tokio::process::Child),
    /// The fork server's child: the server says how it ended.
    Forked {
        ended: oneshot::Receiver<io::Result<ExitStatus>>,
        done: bool,
    },
}

impl NodeChild {
    /// A process the runtime started with piped stdout and stderr.
    pub fn exec(mut child: tokio::process::Child) -> NodeChild {
        NodeChild {
            pid: child.id().unwrap_or(0),
            stdout: child.stdout.take().map(|s| Box::new(s) as Output),
            stderr: child.stderr.take().map(|s| Box::new(s) as Output),
            end: End::Exec(child),
        }
    }

    /// A process the fork server started, writing into these pipes.
    pub fn forked(
        pid: u32,
        stdout: OwnedFd,
        stderr: OwnedFd,
        ended: oneshot::Receiver<io::Result<ExitStatus>>,
    ) -> NodeChild {
        NodeChild {
            pid,
            stdout: reader(stdout),
            stderr: reader(stderr),
            end: End::Forked { ended, done: false },
        }
    }

    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to end (cancel-safe).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        match &mut self.end {
            End::Exec(child) => child.wait().await,
            End::Forked { ended, done } => {
                let status = ended
                    .await
                    .unwrap_or_else(|_| Err(io::Error::other("the fork server went away")));
                *done = true;
                status
            }
        }
    }

    /// Sends SIGKILL (unless it has already been seen to end).
    pub fn start_kill(&mut self) {
        match &mut self.end {
            End::Exec(child) => {
                let _ = child.start_kill();
            }
            End::Forked { done: false, .. } => kill(self.pid),
            End::Forked { done: true, .. } => {}
        }
    }
}

impl Drop for NodeChild {
    /// As tokio's `kill_on_drop`: a node whose supervision ends is killed.
    fn drop(&mut self) {
        if let End::Forked { done: false, .. } = self.end {
            kill(self.pid);
        }
    }
}

fn kill(pid: u32) {
    // SAFETY: a signal to a process of ours. Its pid could only be reused
    // after the fork server reaped it, in the moment before its message
    // reaches us and sets `done`.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// The read end of a node's output pipe, read on tokio's reactor.
fn reader(fd: OwnedFd) -> Option<Output> {
    let file = std::fs::File::from(fd);
    match tokio::net::unix::pipe::Receiver::from_file(file) {
        Ok(r) => Some(Box::new(r)),
        Err(e) => {
            tracing::warn!("a node's output cannot be read: {e}");
            None
        }
    }
}
