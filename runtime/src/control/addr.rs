//! Where the control API listens, and the file that tells clients.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The file in the run directory naming the server's URL and its token.
pub const CONTROL_FILE: &str = "control.json";

/// Where `--control` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// `HOST:PORT` (port 0: a free one).
    Tcp(SocketAddr),
    /// `unix:PATH`: a unix socket, reachable only through the file system.
    Unix(PathBuf),
}

impl ControlAddr {
    /// `--control` without an address: loopback, a free port. Nothing
    /// beyond this machine can reach it unless the user says so.
    pub fn loopback() -> ControlAddr {
        ControlAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Whether other machines may reach it (worth a word on stderr).
    pub fn is_exposed(&self) -> bool {
        matches!(self, ControlAddr::Tcp(a) if !a.ip().is_loopback())
    }
}

impl FromStr for ControlAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path, e.g. unix:/tmp/graph.sock".into());
            }
            return Ok(ControlAddr::Unix(PathBuf::from(path)));
        }
        let hint = "expected HOST:PORT (e.g. 127.0.0.1:8080) or unix:PATH; \
                    for a free loopback port give --control after the graph file, without a value";
        let mut found = text
            .to_socket_addrs()
            .map_err(|e| format!("`{text}`: {e}; {hint}"))?;
        found
            .next()
            .map(ControlAddr::Tcp)
            .ok_or_else(|| format!("`{text}` names no address; {hint}"))
    }
}

impl fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlAddr::Tcp(a) => write!(f, "{a}"),
            ControlAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What `control.json` holds: all a client needs to reach the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlFile {
    /// `http://HOST:PORT` or `unix:PATH`.
    pub url: String,
    /// 64 hex digits: `Authorization: Bearer TOKEN`.
    pub token: String,
    /// The `runtime run` process serving it.
    pub pid: u32,
    /// The graph's name.
    pub graph: String,
}

impl ControlFile {
    /// Writes it as `dir/control.json`, readable by its owner only (the
    /// token is the only key), replacing an old one atomically: a client
    /// never reads half a file.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(CONTROL_FILE);
        let tmp = dir.join(format!(".{CONTROL_FILE}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let text = serde_json::to_string_pretty(self)?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(path)
    }

    /// Reads `path` (a control.json).
    pub fn read(path: &Path) -> Result<ControlFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a control file", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_say_what_is_wrong() {
        let a: ControlAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(a, ControlAddr::Tcp("127.0.0.1:8080".parse().unwrap()));
        assert!(!a.is_exposed());
        assert!("0.0.0.0:0".parse::<ControlAddr>().unwrap().is_exposed());
        assert!(!"[::1]:9".parse::<ControlAddr>().unwrap().is_exposed());
        assert_eq!(
            "unix:/tmp/x.sock".parse::<ControlAddr>().unwrap(),
            ControlAddr::Unix("/tmp/x.sock".into())
        );
        let e = "graph.yaml".parse::<ControlAddr>().unwrap_err();
        assert!(e.contains("HOST:PORT"), "{e}");
        assert!("unix:".parse::<ControlAddr>().unwrap_err().contains("path"));
        assert_eq!(ControlAddr::loopback().to_string(), "127.0.0.1:0");
    }

    #[test]
    fn the_control_file_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("control-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = ControlFile {
            url: "http://127.0.0.1:1".into(),
            token: "ab".repeat(32),
            pid: 1,
            graph: "g".into(),
        };
        let path = file.write(&dir).unwrap();
        file.write(&dir).unwrap(); // an old one is replaced
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ControlFile::read(&path).unwrap(), file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
