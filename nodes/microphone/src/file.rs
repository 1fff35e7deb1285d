//! `file:<path>`: FFmpeg demuxes the best audio stream, decodes it, and
//! swresample converts it to the requested format; `loop` starts over at the end.

use anyhow::{anyhow, bail, Context, Result};
use ffmpeg_next as ff;
use node_media::audio::{default_layout, AudioSpec, Planes, Resampler, SampleFifo};
use node_media::codec::{received, Received};

use crate::source::{Chunk, OutFormat, Source, FRAME_SAMPLES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The demuxer is exhausted; taking the decoder's last frames.
    Draining,
    Done,
}

pub struct FileSource {
    path: String,
    input: ff::format::context::Input,
    stream: usize,
    decoder: ff::decoder::Audio,
    packet: ff::Packet,
    frame: ff::frame::Audio,
    resampler: Option<Resampler>,
    out: OutFormat,
    out_spec: AudioSpec,
    fifo: SampleFifo,
    looping: bool,
    state: State,
    /// Samples decoded since the last (re)start, to refuse looping an empty file.
    decoded_this_pass: u64,
    bad_packets: u64,
    pending: usize,
}

impl FileSource {
    /// Opens `path` and decodes its first audio, so a missing, corrupt or
    /// silent file fails now rather than when the graph is running.
    pub fn open(path: &str, out: OutFormat, looping: bool) -> Result<FileSource> {
        let input =
            ff::format::input(&path).with_context(|| format!("cannot open audio file `{path}`"))?;
        let stream = input
            .streams()
            .best(ff::media::Type::Audio)
            .ok_or_else(|| anyhow!("audio file `{path}` has no audio stream"))?;
        let index = stream.index();
        let decoder = ff::codec::context::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().audio())
            .with_context(|| {
                format!("audio file `{path}`: cannot open a decoder for its audio stream")
            })?;
        let out_spec = AudioSpec::new(
            out.wire.av(),
            out.rate,
            out.channels,
            default_layout(out.channels),
        );
        let mut source = FileSource {
            path: path.to_string(),
            input,
            stream: index,
            decoder,
            packet: ff::Packet::empty(),
            frame: ff::frame::Audio::empty(),
            resampler: None,
            out,
            out_spec,
            fifo: SampleFifo::new(&out_spec, 4 * FRAME_SAMPLES),
            looping,
            state: State::Reading,
            decoded_this_pass: 0,
            bad_packets: 0,
            pending: 0,
        };
        while source.fifo.is_empty() && source.state != State::Done {
            source.pump()?;
        }
        if source.fifo.is_empty() {
            bail!("audio file `{path}`: no audio could be decoded");
        }
        Ok(source)
    }

    /// One step: take a decoded frame, or feed the decoder a packet, or handle
    /// the end of the file.
    fn pump(&mut self) -> Result<()> {
        match received(self.decoder.receive_frame(&mut self.frame)) {
            Ok(Received::Ready) => return self.push_frame(),
            Ok(Received::End) => return self.end_of_pass(),
            Ok(Received::Again) => {}
            Err(e) => return Err(anyhow!("audio file `{}`: decoding failed: {e}", self.path)),
        }
        if self.state != State::Reading {
            return Ok(());
        }
        // SAFETY: releases the previous packet's buffer before the demuxer reuses the packet.
        unsafe { ff::ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(&mut self.packet)) };
        match self.packet.read(&mut self.input) {
            Ok(()) if self.packet.stream() == self.stream => {
                match self.decoder.send_packet(&self.packet) {
                    Ok(()) => {}
                    // A damaged packet: skip it, as players do, and say so once.
                    Err(ff::Error::InvalidData) => {
                        self.bad_packets += 1;
                        if self.bad_packets == 1 {
                            tracing::warn!("audio file `{}`: skipping undecodable data", self.path);
                        }
                    }
                    Err(e) => bail!("audio file `{}`: decoding failed: {e}", self.path),
                }
            }
            Ok(()) => {}
            Err(ff::Error::Eof) => {
                self.decoder
                    .send_eof()
                    .map_err(|e| anyhow!("audio file `{}`: {e}", self.path))?;
                self.state = State::Draining;
            }
            Err(e) => bail!("audio file `{}`: reading failed: {e}", self.path),
        }
        Ok(())
    }

    fn push_frame(&mut self) -> Result<()> {
        let spec = AudioSpec::of_frame(&self.frame);
        if self.resampler.as_ref().is_none_or(|r| *r.input() != spec) {
            // A format change mid-file: finish the old conversion first.
            self.flush_resampler()?;
            self.resampler = Some(
                Resampler::new(spec, self.out_spec)
                    .with_context(|| format!("audio file `{}`", self.path))?,
            );
        }
        let r = self.resampler.as_mut().expect("just set");
        let mut tail = self.fifo.tail(r.max_output(self.frame.samples()));
        let n = r.convert(&Planes::frame(&self.frame), &mut tail)?;
        self.fifo.commit(n);
        self.decoded_this_pass += self.frame.samples() as u64;
        Ok(())
    }

    fn flush_resampler(&mut self) -> Result<()> {
        if let Some(r) = self.resampler.as_mut() {
            loop {
                let mut tail = self.fifo.tail(FRAME_SAMPLES);
                let n = r.flush(&mut tail)?;
                self.fifo.commit(n);
                if n == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    fn end_of_pass(&mut self) -> Result<()> {
        if !self.looping {
            self.flush_resampler()?;
            self.state = State::Done;
            return Ok(());
        }
        if self.decoded_this_pass == 0 {
            bail!("audio file `{}`: no audio could be decoded", self.path);
        }
        // Start over; the resampler keeps running so the seam has no gap.
        self.input
            .seek(0, ..)
            .map_err(|e| anyhow!("audio file `{}`: cannot seek back to loop: {e}", self.path))?;
        self.decoder.flush();
        self.state = State::Reading;
        self.decoded_this_pass = 0;
        Ok(())
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        let d = &self.decoder;
        format!(
            "file `{}` ({} {} Hz {} ch{})",
            self.path,
            d.id().name(),
            d.rate(),
            d.channels(),
            if self.looping { ", looping" } else { "" }
        )
    }

    fn prepare(&mut self, max: usize, stop: &dyn Fn() -> bool) -> Result<Option<Chunk>> {
        let want = max;
        while self.fifo.len() < want && self.state != State::Done && !stop() {
            self.pump()?;
        }
        self.pending = want.min(self.fifo.len());
        if self.pending == 0 {
            return Ok(None);
        }
        Ok(Some(Chunk {
            samples: self.pending,
            capture_ns: None,
        }))
    }

    fn write(&mut self, out: &mut [u8]) -> Result<()> {
        self.fifo.pop_to_payload(out, self.pending)?;
        self.out.wire.quantize(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_media::audio::{read_f32, WireFormat};

    fn out() -> OutFormat {
        OutFormat {
            rate: 48_000,
            channels: 2,
            wire: WireFormat::from_param("f32").unwrap(),
        }
    }

    fn make_wav(dir: &std::path::Path, secs: &str) -> String {
        let path = dir.join("tone.wav");
        let ok = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency=1000:sample_rate=44100:duration={secs}"),
            ])
            .args(["-ac", "1"])
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ffmpeg CLI could not make a test file");
        path.to_string_lossy().into_owned()
    }

    fn read_all(src: &mut FileSource, limit: usize) -> Vec<f32> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; out().frame_bytes(FRAME_SAMPLES)];
        while let Some(c) = src.prepare(FRAME_SAMPLES, &|| false).unwrap() {
            let bytes = out().frame_bytes(c.samples);
            src.write(&mut buf[..bytes]).unwrap();
            let mut f = vec![0f32; c.samples * 2];
            read_f32(node_api::SampleFormat::F32, &buf[..bytes], &mut f);
            all.extend_from_slice(&f);
            if all.len() >= limit {
                break;
            }
        }
        all
    }

    #[test]
    fn decodes_resamples_and_loops() {
        let dir = std::env::temp_dir().join(format!("mic-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = make_wav(&dir, "1");
        let mut src = FileSource::open(&path, out(), false).unwrap();
        let all = read_all(&mut src, usize::MAX);
        // 1 s at 44.1 kHz becomes 1 s at 48 kHz, mono copied to both channels.
        let frames = all.len() / 2;
        assert!((47_990..=48_010).contains(&frames), "{frames}");
        assert!(all.chunks_exact(2).all(|f| f[0] == f[1]));
        // lavfi's sine peaks at 1/8; swresample spreads mono (FC) to FL/FR at -3 dB.
        let peak = all.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            (peak - 0.125 * std::f32::consts::FRAC_1_SQRT_2).abs() < 0.002,
            "{peak}"
        );

        let mut looping = FileSource::open(&path, out(), true).unwrap();
        let long = read_all(&mut looping, 2 * 48_000 * 3);
        assert!(long.len() >= 2 * 48_000 * 3);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_and_corrupt_files_name_the_path() {
        let e = FileSource::open("/nonexistent/x.wav", out(), false)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/nonexistent/x.wav"), "{e:#}");
        let dir = std::env::temp_dir().join(format!("mic-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.mp3");
        std::fs::write(&bad, b"this is not audio at all").unwrap();
        let e = FileSource::open(bad.to_str().unwrap(), out(), false)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("bad.mp3"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
