//! `mediagraph-nodes --fork-server`: one pre-started process that forks
//! every built-in node of a run.
//!
//! Starting `mediagraph-nodes` costs ~50–65 ms of CPU before `main`: the
//! dynamic loader maps ~200 shared libraries (FFmpeg's and theirs) and, as
//! Debian links them with `-z now`, resolves every symbol. The runtime starts
//! this server once per run instead; each node is a `fork` of it, already
//! linked (~1 ms), whose relocated library pages stay shared copy-on-write
//! between all the nodes of the run.
//!
//! The server must stay single-threaded (a fork copies only the calling
//! thread) and touch nothing a node sets up (logging, zenoh, codecs).
//!
//! Protocol, over a `SOCK_SEQPACKET` socket on stdin (one message per packet):
//! - runtime → server: `[args, env, cwd]` as JSON (args start with the kind;
//!   env is the node's whole environment) with three descriptors attached
//!   (`SCM_RIGHTS`): the node's stdin, stdout and stderr;
//! - server → runtime: `S <pid>` (started) or `E <error>` in answer, and
//!   `X <pid> <wait status>` when a node ends (the server reaps its nodes).
//!
//! When the runtime closes its end, the server reaps what is left and exits.

use std::io;
use std::os::fd::RawFd;

use node_catalog::NODE_ID_FLAG;

/// The largest request: a node's config and environment, a few KiB.
const MAX_REQUEST: usize = 1 << 20;

/// The descriptors a request carries: the node's stdin, stdout, stderr.
const FDS: usize = 3;

/// A node to start, as the runtime asked.
struct Request {
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    fds: [RawFd; FDS],
}

/// Serves the runtime on stdin until it closes it and every node has ended.
pub fn serve(run_node: fn(&[String]) -> i32) -> i32 {
    let sock: RawFd = 0;
    let signals = match child_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("mediagraph-nodes --fork-server: {e}");
            return 1;
        }
    };
    let mut running = 0usize;
    let mut open = true;
    while open || running > 0 {
        let (sock_ready, child_ended) = match wait_for(open.then_some(sock), signals) {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("mediagraph-nodes --fork-server: poll: {e}");
                return 1;
            }
        };
        if child_ended {
            running -= reap(sock, signals);
        }
        if sock_ready {
            match receive(sock) {
                Ok(Some(req)) => {
                    if start(sock, signals, req, run_node) {
                        running += 1;
                    }
                }
                Ok(None) => open = false,
                Err(e) => reply(sock, &format!("E {e}")),
            }
        }
    }
    0
}

/// A signalfd that reads SIGCHLD, which is blocked so that it queues there.
fn child_signals() -> io::Result<RawFd> {
    // SAFETY: plain libc calls on a sigset we own.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        libc::sigaddset(&mut mask, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Blocks until the socket has a request (or closed) or a node ended.
fn wait_for(sock: Option<RawFd>, signals: RawFd) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: signals,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: sock.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a valid array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let sock_ready = fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
    Ok((sock_ready, fds[0].revents & libc::POLLIN != 0))
}

/// Reaps every ended node, telling the runtime how each ended; returns how many.
fn reap(sock: RawFd, signals: RawFd) -> usize {
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    // SAFETY: reading into a buffer we own; the fd is non-blocking.
    while unsafe { libc::read(signals, info.as_mut_ptr().cast(), info.len()) } > 0 {}
    let mut reaped = 0;
    loop {
        let mut status = 0;
        // SAFETY: waiting for any child of ours, without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return reaped;
        }
        reply(sock, &format!("X {pid} {status}"));
        reaped += 1;
    }
}

/// Sends one message; a runtime that is gone cannot be told anything.
fn reply(sock: RawFd, text: &str) {
    // SAFETY: sending a buffer we own; MSG_NOSIGNAL: no SIGPIPE if it is gone.
    unsafe {
        libc::send(sock, text.as_ptr().cast(), text.len(), libc::MSG_NOSIGNAL);
    }
}

/// Reads one request with its descriptors; `None` when the runtime closed.
fn receive(sock: RawFd) -> io::Result<Option<Request>> {
    let mut buf = vec![0u8; MAX_REQUEST];
    // Room for one SCM_RIGHTS message of FDS descriptors, 8-byte aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr points at buffers that outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: as above; MSG_CMSG_CLOEXEC so no other node inherits them.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Ok(None);
    }
    let fds = received_fds(&msg)?;
    let (args, env, cwd): (Vec<String>, Vec<(String, String)>, String) =
        serde_json::from_slice(&buf[..n as usize]).map_err(|e| {
            fds.iter().for_each(|&fd| close(fd));
            io::Error::new(io::ErrorKind::InvalidData, format!("bad request: {e}"))
        })?;
    Ok(Some(Request {
        args,
        env,
        cwd,
        fds,
    }))
}

/// The three descriptors attached to a received message.
fn received_fds(msg: &libc::msghdr) -> io::Result<[RawFd; FDS]> {
    // SAFETY: walking the control buffer recvmsg filled, with libc's macros.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            || (*cmsg).cmsg_len as usize != libc::CMSG_LEN((FDS * 4) as u32) as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a request without its three descriptors",
            ));
        }
        let mut fds = [0; FDS];
        std::ptr::copy_nonoverlapping(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.as_mut_ptr(), FDS);
        Ok(fds)
    }
}

fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(fd) };
}

/// Forks the node; the parent answers with its pid. True when it started.
fn start(sock: RawFd, signals: RawFd, req: Request, run_node: fn(&[String]) -> i32) -> bool {
    // SAFETY: getpid cannot fail; this process is single-threaded, so the
    // forked child is a whole copy.
    let server = unsafe { libc::getpid() };
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        become_node(server, sock, signals, req, run_node);
    }
    req.fds.iter().for_each(|&fd| close(fd));
    if pid < 0 {
        reply(sock, &format!("E fork: {}", io::Error::last_os_error()));
        return false;
    }
    reply(sock, &format!("S {pid}"));
    true
}

/// In the forked child: become the node `req` describes, as an exec would
/// have made it, and run it to its end.
fn become_node(
    server: libc::pid_t,
    sock: RawFd,
    signals: RawFd,
    req: Request,
    run_node: fn(&[String]) -> i32,
) -> ! {
    close(sock);
    close(signals);
    // SAFETY: resetting this (single-threaded) process's own signal mask,
    // process group and parent-death signal; dup2 onto the standard streams.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Its own process group: a Ctrl-C at the terminal reaches only the
        // runtime, which stops the graph in order.
        libc::setpgid(0, 0);
        // No node outlives the server, which dies with the runtime.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != server {
            libc::_exit(1);
        }
        for (target, &fd) in req.fds.iter().enumerate() {
            libc::dup2(fd, target as RawFd);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    for (key, value) in &req.env {
        std::env::set_var(key, value);
    }
    show_as(&req);
    if let Err(e) = std::env::set_current_dir(&req.cwd) {
        eprintln!("cannot enter {}: {e}", req.cwd);
        std::process::exit(1);
    }
    // A panic ends the node as it would end a `main` (status 101), never
    // back in the server's loop.
    let code = std::panic::catch_unwind(|| run_node(&req.args)).unwrap_or(101);
    std::process::exit(code)
}

/// Rewrites this process's command line (what `ps` and /proc/PID/cmdline
/// show) from the server's `mediagraph-nodes --fork-server PADDING` to
/// `mediagraph-nodes KIND ARGS --node-id ID`, within the room the server's
/// arguments took (the runtime pads them), as setproctitle(3) does.
fn show_as(req: &Request) {
    let Some((start, end)) = arg_area() else {
        return;
    };
    let id = req.env.iter().find(|(k, _)| k == "MEDIAGRAPH_NODE_ID");
    let mut line = Vec::new();
    let program = std::env::args().next().unwrap_or_default();
    let words = [program.as_str()]
        .into_iter()
        .chain(req.args.iter().map(String::as_str))
        .chain(
            id.map(|(_, v)| [NODE_ID_FLAG, v.as_str()])
                .into_iter()
                .flatten(),
        );
    for word in words {
        line.extend_from_slice(word.as_bytes());
        line.push(0);
    }
    let room = end - start;
    line.resize(room, 0);
    line[room - 1] = 0;
    // SAFETY: [start, end) is this process's own argument area (its stack),
    // which nothing else reads once `main` has copied the arguments.
    unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), start as *mut u8, room) };
}

/// Where this process's arguments are in its memory: /proc/self/stat fields
/// 48 and 49 (arg_start, arg_end).
fn arg_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let start: usize = fields.get(48 - 3)?.parse().ok()?;
    let end: usize = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}
