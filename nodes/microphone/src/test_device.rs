//! A capture device on any machine, for tests: ALSA's `file` pcm reading a
//! raw file over the `null` slave, with a `hint` so device lists show it.
//! The microphone's own tests and the runtime's device listing use it.

use std::path::{Path, PathBuf};

/// The pcm's name.
pub const NAME: &str = "testcapture";
/// Its description in device lists.
pub const DESCRIPTION: &str = "Test capture";

/// Writes an ALSA configuration defining [`NAME`], reading raw samples from
/// `infile`, into `dir`; returns its path, for `ALSA_CONFIG_PATH`.
pub fn write_config(dir: &Path, infile: &Path) -> std::io::Result<PathBuf> {
    let conf = dir.join("asound.conf");
    std::fs::write(
        &conf,
        format!(
            "</usr/share/alsa/alsa.conf>\n\
             pcm.{NAME} {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  \
             infile \"{}\"\n  format \"raw\"\n  hint {{ show on description \"{DESCRIPTION}\" }}\n}}\n",
            infile.display()
        ),
    )?;
    Ok(conf)
}
