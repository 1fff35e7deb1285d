//! The containers the output kinds write, and the codecs each carries: the
//! codec × container matrix `runtime check` applies to every encoder feeding
//! an output (mux, stream, hls, replay-buffer).

use crate::kinds::audio_encode::Codec as AudioCodec;
use crate::kinds::video_encode::Codec as VideoCodec;
use crate::Choice;

crate::choice! {
    /// A container, by the name `runtime check` shows.
    pub enum Format {
        Mp4 = "mp4", Mkv = "mkv", Webm = "webm", Flv = "flv", MpegTs = "mpegts"
    }
}

impl Format {
    /// Whether the container carries a codec (a codec param's name, e.g.
    /// `h265`; other names only go in MKV), as FFmpeg 5.1 writes them.
    pub fn accepts(self, codec: &str) -> bool {
        let video = VideoCodec::from_name(codec);
        let audio = AudioCodec::from_name(codec);
        match self {
            // MJPEG in MP4 is a QuickTime-ism players do not agree on.
            Format::Mp4 => video.is_some_and(|v| v != VideoCodec::Mjpeg) || audio.is_some(),
            Format::Mkv => true,
            Format::Webm => {
                matches!(video, Some(VideoCodec::Vp9 | VideoCodec::Av1))
                    || audio == Some(AudioCodec::Opus)
            }
            // FLV: H.264 with AAC or MP3 (the enhanced-RTMP codecs came after FFmpeg 5.1).
            Format::Flv => {
                video == Some(VideoCodec::H264)
                    || matches!(audio, Some(AudioCodec::Aac | AudioCodec::Mp3))
            }
            Format::MpegTs => {
                matches!(video, Some(VideoCodec::H264 | VideoCodec::H265)) || audio.is_some()
            }
        }
    }

    /// FFmpeg's name of its muxer.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Format::Mkv => "matroska",
            other => other.name(),
        }
    }

    /// The codecs of the encoders that this container carries.
    pub fn codecs(self) -> Vec<&'static str> {
        [VideoCodec::NAMES, AudioCodec::NAMES]
            .concat()
            .into_iter()
            .filter(|c| self.accepts(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        assert!(Format::Flv.accepts("h264") && Format::Flv.accepts("aac"));
        assert!(!Format::Flv.accepts("h265") && !Format::Flv.accepts("opus"));
        assert!(Format::MpegTs.accepts("h265") && Format::MpegTs.accepts("opus"));
        assert!(!Format::MpegTs.accepts("vp9"));
        assert!(!Format::Webm.accepts("aac"));
        assert!(Format::Mkv.accepts("mp3"));
    }
}
