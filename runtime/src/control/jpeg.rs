//! Snapshots made into JPEGs by a helper process (`mediagraph-nodes
//! --jpeg-server`, see `node_api::snapshot`), started with the control
//! server (again at the next snapshot if it could not start, or died) and
//! kept until the control server ends: the runtime itself links no codec
//! library, which kept ~200 shared libraries out of every run's start.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use node_api::snapshot::{JpegReply, JpegRequest, JPEG_SERVER_FLAG};
use node_api::VideoFrame;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Mutex;

/// The widest snapshot asked for (a preview, not a still camera).
pub const MAX_WIDTH: u32 = 3840;
/// The narrowest: swscale and the encoder want a few pixels.
pub const MIN_WIDTH: u32 = 16;

/// The helper, once started; one snapshot at a time goes through it.
#[derive(Default)]
pub struct JpegHelper {
    /// Where the built-in nodes' binary is (`None`: where the runtime looks
    /// for it, see `builtin_binary`).
    node_dir: Option<PathBuf>,
    helper: Mutex<Option<Helper>>,
}

struct Helper {
    /// Killed when dropped.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl JpegHelper {
    /// A helper run from the built-in nodes' binary in `node_dir`.
    pub fn in_dir(node_dir: Option<PathBuf>) -> JpegHelper {
        JpegHelper {
            node_dir,
            helper: Mutex::default(),
        }
    }

    /// Starts the helper now (else at the first snapshot); a helper that
    /// cannot start is said at each snapshot.
    pub async fn start(&self) {
        let mut slot = self.helper.lock().await;
        if slot.is_none() {
            *slot = start(self.node_dir.as_deref()).ok();
        }
    }

    /// The JPEG of `frame` (its pixels in `data`), `width` wide.
    pub async fn encode(&self, frame: &VideoFrame, data: &[u8], width: u32) -> Result<Vec<u8>> {
        let mut slot = self.helper.lock().await;
        if slot.is_none() {
            *slot = Some(start(self.node_dir.as_deref())?);
        }
        let helper = slot.as_mut().expect("started above");
        match ask(helper, frame, data, width).await {
            Ok(JpegReply::Jpeg { len }) => {
                let mut jpeg = vec![0u8; len];
                helper.stdout.read_exact(&mut jpeg).await?;
                Ok(jpeg)
            }
            Ok(JpegReply::Error(why)) => Err(anyhow!(why)),
            Err(e) => {
                // A helper that died or garbled its answer is started anew
                // for the next snapshot.
                *slot = None;
                Err(e.context("the snapshot helper"))
            }
        }
    }
}

fn start(node_dir: Option<&Path>) -> Result<Helper> {
    let program = crate::run::builtin_binary(node_dir).context("the snapshot helper")?;
    let mut child = tokio::process::Command::new(&program)
        .arg(JPEG_SERVER_FLAG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {JPEG_SERVER_FLAG}", program.display()))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Ok(Helper {
        _child: child,
        stdin,
        stdout,
    })
}

async fn ask(
    helper: &mut Helper,
    frame: &VideoFrame,
    data: &[u8],
    width: u32,
) -> Result<JpegReply> {
    let request = JpegRequest {
        frame: frame.clone(),
        width,
        len: data.len(),
    };
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    helper.stdin.write_all(&line).await?;
    helper.stdin.write_all(data).await?;
    helper.stdin.flush().await?;
    let mut answer = String::new();
    if helper.stdout.read_line(&mut answer).await? == 0 {
        bail!("it ended without an answer");
    }
    Ok(serde_json::from_str(&answer)?)
}
