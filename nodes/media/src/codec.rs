//! What FFmpeg's send/receive codec API answers, in one place: every node's
//! decode and encode loop reads it the same way.

use ffmpeg_next as ff;

/// The outcome of a codec's `receive_frame` / `receive_packet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A frame or packet was written to the buffer given.
    Ready,
    /// Nothing more until more input is sent (EAGAIN).
    Again,
    /// The codec is drained (after a flush).
    End,
}

/// Reads a receive call's result: `Err` only for a real failure.
pub fn received(result: Result<(), ff::Error>) -> Result<Received, ff::Error> {
    match result {
        Ok(()) => Ok(Received::Ready),
        Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => Ok(Received::Again),
        Err(ff::Error::Eof) => Ok(Received::End),
        Err(e) => Err(e),
    }
}

/// Whether `e` is EAGAIN: the codec wants its output read before more input.
pub fn is_again(e: &ff::Error) -> bool {
    matches!(e, ff::Error::Other { errno } if *errno == ff::util::error::EAGAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eagain_and_eof_are_not_failures() {
        assert_eq!(received(Ok(())), Ok(Received::Ready));
        let again = ff::Error::Other {
            errno: ff::util::error::EAGAIN,
        };
        assert!(is_again(&again));
        assert_eq!(received(Err(again)), Ok(Received::Again));
        assert_eq!(received(Err(ff::Error::Eof)), Ok(Received::End));
        assert_eq!(
            received(Err(ff::Error::InvalidData)),
            Err(ff::Error::InvalidData)
        );
    }
}
