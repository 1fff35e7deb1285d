//! The `source` param: which kind of capture this node runs.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The first camera, else the test pattern (with a warning).
    Auto,
    /// A camera by index or by name.
    Device(String),
    Test,
    /// A local file (the `file:` prefix removed) or a URL FFmpeg can open.
    Media(String),
}

impl Source {
    pub fn parse(text: &str) -> Result<Source> {
        let text = text.trim();
        Ok(match text {
            "auto" => Source::Auto,
            "test" => Source::Test,
            _ => {
                if let Some(device) = text.strip_prefix("device:") {
                    if device.is_empty() {
                        bail!("source `device:` needs a camera index or name, e.g. `device:0`");
                    }
                    Source::Device(device.to_string())
                } else if let Some(path) = text.strip_prefix("file:") {
                    if path.is_empty() {
                        bail!("source `file:` needs a path, e.g. `file:clip.mp4`");
                    }
                    Source::Media(path.to_string())
                } else if text.contains("://") {
                    Source::Media(text.to_string())
                } else {
                    bail!("unknown source `{text}`: use auto, test, device:<index|name>, file:<path> or a URL")
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(Source::parse("auto").unwrap(), Source::Auto);
        assert_eq!(Source::parse(" test ").unwrap(), Source::Test);
        assert_eq!(
            Source::parse("device:0").unwrap(),
            Source::Device("0".into())
        );
        assert_eq!(
            Source::parse("device:HD Webcam").unwrap(),
            Source::Device("HD Webcam".into())
        );
        assert_eq!(
            Source::parse("file:a/b.mp4").unwrap(),
            Source::Media("a/b.mp4".into())
        );
        assert_eq!(
            Source::parse("rtsp://cam/1").unwrap(),
            Source::Media("rtsp://cam/1".into())
        );
        assert!(Source::parse("device:").is_err());
        assert!(Source::parse("clip.mp4")
            .unwrap_err()
            .to_string()
            .contains("file:<path>"));
    }
}
