//! From what was written while recording to a normal file: the finalize step
//! of a clean stop (fragmented MP4 → MP4 with one index, moov first) and the
//! recovery of a file whose writer died (`node-mux --recover`, behind
//! `runtime recover`). Both copy the packets into a new file beside the old
//! one and rename it over the old one, so the old file stays whole until the
//! new one is.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ffmpeg_next::{codec, format, media, Dictionary, Packet, Rational};

use crate::disk;
use crate::muxer::{add_chapters, Chapter};

/// The top-level box layout of an MP4 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4Layout {
    /// Written as fragments (moof boxes): an interrupted or not yet finalized recording.
    pub fragmented: bool,
    pub has_moov: bool,
    /// Bytes up to the end of the last complete top-level box: a box cut
    /// short by a crash or a full disk starts there.
    pub complete_len: u64,
    pub len: u64,
}

/// Reads the top-level boxes of an MP4 up to the first one cut short.
pub fn mp4_layout(path: &Path) -> std::io::Result<Mp4Layout> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut layout = Mp4Layout {
        fragmented: false,
        has_moov: false,
        complete_len: 0,
        len,
    };
    let mut pos = 0u64;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 16];
        let got = file.read(&mut header)?;
        let size = match u32::from_be_bytes(header[..4].try_into().unwrap()) {
            // A 64-bit size follows the type.
            1 if got >= 16 => u64::from_be_bytes(header[8..16].try_into().unwrap()),
            // Up to the end of the file: only a finished writer leaves that.
            0 => len - pos,
            n => n as u64,
        };
        if size < 8 || pos + size > len {
            break;
        }
        match &header[4..8] {
            b"moof" => layout.fragmented = true,
            b"moov" => layout.has_moov = true,
            _ => {}
        }
        pos += size;
        layout.complete_len = pos;
    }
    Ok(layout)
}

/// What a remux copied.
#[derive(Debug, Clone, Default)]
pub struct Remuxed {
    /// Packets per stream, in the file's stream order.
    pub packets: Vec<u64>,
    /// First to last presented instant over all streams, seconds.
    pub seconds: f64,
    /// Packets left out because their bytes were cut short.
    pub incomplete: u64,
}

/// Copies every complete packet of `src` into a new file `dst` of FFmpeg
/// format `format`. Packets whose bytes reach past `valid_len` (a cut-short
/// tail) are left out; a read error ends the copy like the end of the file.
pub fn remux(
    src: &Path,
    dst: &Path,
    format: &str,
    faststart: bool,
    valid_len: Option<u64>,
    chapters: &[Chapter],
) -> Result<Remuxed> {
    let mut input =
        format::input(&src).map_err(|e| anyhow!("cannot read {}: {e}", src.display()))?;
    // Never through a link planted at the temporary name. `file` stays open
    // to the end: faststart opens its name again to move the index.
    let file = crate::output::create(dst, true, None)?;
    let mut output = format::output_as(&crate::output::fd_path(&file), format)
        .map_err(|e| disk::write_error(&format!("cannot create {}", dst.display()), &e))?;
    let mut map: Vec<Option<usize>> = Vec::new();
    let mut in_tb: Vec<Rational> = Vec::new();
    for stream in input.streams() {
        let par = stream.parameters();
        in_tb.push(stream.time_base());
        if !matches!(par.medium(), media::Type::Video | media::Type::Audio) {
            map.push(None);
            continue;
        }
        let mut out = output
            .add_stream(ffmpeg_next::encoder::find(codec::Id::None))
            .map_err(|e| anyhow!("{}: {e}", dst.display()))?;
        out.set_parameters(par);
        out.set_time_base(stream.time_base());
        // The track's title (and language) stay.
        out.set_metadata(stream.metadata().to_owned());
        // SAFETY: the stream's parameters were just copied and are ours; a
        // tag of the source container may not fit the target's.
        unsafe { (*out.parameters().as_mut_ptr()).codec_tag = 0 };
        map.push(Some(out.index()));
    }
    if map.iter().all(Option::is_none) {
        bail!("{} has no audio or video stream", src.display());
    }
    output.set_metadata(input.metadata().to_owned());
    let mut opts = Dictionary::new();
    if faststart && format == "mp4" {
        opts.set("movflags", "+faststart");
    }
    output
        .write_header_with(opts)
        .map_err(|e| disk::write_error(&format!("writing the header of {}", dst.display()), &e))?;
    let out_tb: Vec<Option<Rational>> = map
        .iter()
        .map(|m| m.map(|i| output.stream(i).expect("added").time_base()))
        .collect();
    let mut result = Remuxed {
        packets: vec![0; map.len()],
        ..Remuxed::default()
    };
    let mut span: Option<(f64, f64)> = None;
    loop {
        let mut packet = Packet::empty();
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg_next::Error::Eof) => break,
            Err(e) => {
                tracing::warn!("{}: reading stopped early: {e}", src.display());
                break;
            }
        }
        let i = packet.stream();
        let (Some(Some(out_index)), Some(Some(tb))) = (map.get(i), out_tb.get(i)) else {
            continue;
        };
        if let (Some(valid), Ok(pos)) = (valid_len, u64::try_from(packet.position())) {
            if pos + packet.size() as u64 > valid {
                result.incomplete += 1;
                continue;
            }
        }
        if let Some(pts) = packet.pts() {
            let start = seconds(pts, in_tb[i]);
            let end = seconds(pts + packet.duration(), in_tb[i]);
            span = Some(match span {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
        }
        packet.rescale_ts(in_tb[i], *tb);
        packet.set_stream(*out_index);
        packet.set_position(-1);
        packet
            .write_interleaved(&mut output)
            .map_err(|e| disk::write_error(&format!("writing {}", dst.display()), &e))?;
        result.packets[i] += 1;
    }
    // Chapters go in with the index, at the trailer.
    add_chapters(&mut output, chapters, span.map_or(0.0, |s| s.1))?;
    output
        .write_trailer()
        .map_err(|e| disk::write_error(&format!("finishing {}", dst.display()), &e))?;
    result.seconds = span.map_or(0.0, |(s, e)| (e - s).max(0.0));
    Ok(result)
}

/// Packets per stream of a file, by reading it to its end (or first error).
pub fn count_packets(path: &Path) -> Result<Vec<u64>> {
    let mut input =
        format::input(&path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let mut counts = vec![0u64; input.streams().count()];
    let mut packet = Packet::empty();
    while packet.read(&mut input).is_ok() {
        if let Some(n) = counts.get_mut(packet.stream()) {
            *n += 1;
        }
    }
    Ok(counts)
}

fn seconds(ts: i64, tb: Rational) -> f64 {
    ts as f64 * tb.numerator() as f64 / tb.denominator().max(1) as f64
}

/// The temporary file a finalize writes beside `path` before renaming it over.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.finalizing"))
}

/// Rewrites `path` in place through [`remux`]: into a temporary file beside
/// it, then renamed over it. On failure the original is left untouched.
pub fn rewrite(
    path: &Path,
    format: &str,
    faststart: bool,
    valid_len: Option<u64>,
    chapters: &[Chapter],
) -> Result<Remuxed> {
    let temp = temp_beside(path);
    let result = remux(path, &temp, format, faststart, valid_len, chapters).and_then(|r| {
        std::fs::rename(&temp, path)
            .with_context(|| format!("replacing {} with its finalized copy", path.display()))?;
        Ok(r)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// What [`recover`] found and did.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// A normal MP4 already (a clean stop finalized it).
    AlreadyFinal,
    /// Rewritten into a normal file.
    Rewritten(Remuxed),
}

/// Makes an interrupted recording a normal, seekable file in place:
/// a fragmented MP4 becomes an MP4 with its index first (a fragment cut short
/// by the crash is left out); an MKV/WebM is rewritten with its duration and
/// cues. `container` is the catalog name (mp4, mkv, webm).
pub fn recover(path: &Path, container: &str) -> Result<Recovery> {
    let format = crate::output::ffmpeg_format(container)
        .ok_or_else(|| anyhow!("{}: not an MP4, MKV or WebM file", path.display()))?;
    if container == "mp4" {
        let layout = mp4_layout(path).with_context(|| format!("reading {}", path.display()))?;
        if !layout.has_moov {
            bail!(
                "{}: no MP4 header (moov): the recording ended before its first fragment, nothing to recover",
                path.display()
            );
        }
        if !layout.fragmented {
            return Ok(Recovery::AlreadyFinal);
        }
        return rewrite(path, format, true, Some(layout.complete_len), &[])
            .map(Recovery::Rewritten);
    }
    rewrite(path, format, false, None, &[]).map(Recovery::Rewritten)
}

/// After a write error (full disk, file size limit, I/O error): cuts a
/// fragment left half-written off the end of an MP4, so the file plays
/// without errors even when there is no room to finalize it.
pub fn trim_incomplete_tail(path: &Path) -> Result<u64> {
    let layout = mp4_layout(path)?;
    if layout.complete_len < layout.len {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(layout.complete_len)?;
    }
    Ok(layout.len - layout.complete_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_box(f: &mut File, kind: &[u8; 4], body: usize) {
        f.write_all(&((body + 8) as u32).to_be_bytes()).unwrap();
        f.write_all(kind).unwrap();
        f.write_all(&vec![0u8; body]).unwrap();
    }

    #[test]
    fn layout_stops_at_a_box_cut_short() {
        let dir = std::env::temp_dir().join(format!("node-mux-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.mp4");
        let mut f = File::create(&path).unwrap();
        write_box(&mut f, b"ftyp", 16);
        write_box(&mut f, b"moov", 100);
        write_box(&mut f, b"moof", 40);
        write_box(&mut f, b"mdat", 1000);
        let complete = 24 + 108 + 48 + 1008;
        // A fragment whose mdat was cut short.
        write_box(&mut f, b"moof", 40);
        f.write_all(&2000u32.to_be_bytes()).unwrap();
        f.write_all(b"mdat").unwrap();
        f.write_all(&[0u8; 300]).unwrap();
        drop(f);
        let l = mp4_layout(&path).unwrap();
        assert!(l.fragmented && l.has_moov);
        assert_eq!(l.complete_len, complete + 48);
        assert_eq!(l.len, complete + 48 + 308);
        assert_eq!(trim_incomplete_tail(&path).unwrap(), 308);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), complete + 48);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
