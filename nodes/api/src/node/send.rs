//! Sending: buffers from an output's pool, typed sends, forwarding a
//! received payload without a copy, ending an output.

use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Result};
use zenoh::bytes::ZBytes;
use zenoh::Wait;

use super::Node;
use crate::keys;
use crate::message::{AudioFrame, EncodedPacket, Envelope, Header, Payload, VideoFrame};
use crate::pool::{OutBuf, SharedBuf};

impl Node {
    /// A buffer of `len` bytes to fill and send on `output`: from the output's
    /// shared-memory pool (grown if `len` exceeds what was reserved).
    pub fn alloc(&mut self, output: &str, len: usize) -> Result<OutBuf> {
        if !self.config.transport.shared_memory || len == 0 {
            return Ok(OutBuf::Heap(vec![0; len]));
        }
        let needs_pool = self
            .output_mut(output)?
            .pool
            .as_ref()
            .is_none_or(|p| p.max_payload < len);
        if needs_pool {
            self.reserve(output, len)?;
        }
        let out = self.output_mut(output)?;
        let (buf, waited) = out.pool.as_ref().unwrap().alloc(len)?;
        if waited {
            out.counters.pool_waits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(OutBuf::Shm(buf))
    }

    /// Sends a message on `output`.
    pub fn send(&mut self, output: &str, header: Header, payload: OutBuf) -> Result<()> {
        if !self.within_media_limit(output, &header)? {
            return Ok(());
        }
        let bytes = match payload {
            OutBuf::Shm(b) => {
                self.holds.retain(zenoh_shm::ShmBufHardRef::from(&b));
                ZBytes::from(b)
            }
            OutBuf::Heap(v) => ZBytes::from(v),
        };
        self.put(output, header, bytes)
    }

    pub fn send_video(&mut self, output: &str, frame: VideoFrame, payload: OutBuf) -> Result<()> {
        self.send(output, Header::Video(frame), payload)
    }

    /// Sends a video frame in a buffer from [`Node::pool_handle`], which other
    /// holders (the decoder that filled it) may keep reading.
    pub fn send_video_shared(
        &mut self,
        output: &str,
        frame: VideoFrame,
        payload: SharedBuf,
    ) -> Result<()> {
        let header = Header::Video(frame);
        if !self.within_media_limit(output, &header)? {
            return Ok(());
        }
        self.holds
            .retain(zenoh_shm::ShmBufHardRef::from(&payload.0));
        self.put(output, header, ZBytes::from(payload.0))
    }

    pub fn send_audio(&mut self, output: &str, frame: AudioFrame, payload: OutBuf) -> Result<()> {
        self.send(output, Header::Audio(frame), payload)
    }

    /// Sends an encoded packet. Packets are small (the encoder already holds
    /// them in its own memory), so they are copied into the message instead of
    /// a pool: a shared-memory buffer that is recycled while still queued in
    /// the link can be rejected by the receiver, and packets must never be lost.
    pub fn send_packet(&mut self, output: &str, packet: EncodedPacket, data: &[u8]) -> Result<()> {
        let header = Header::Packet(packet);
        if !self.within_media_limit(output, &header)? {
            return Ok(());
        }
        self.put(output, header, ZBytes::from(data.to_vec()))
    }

    /// Sends a payload received on an input, unchanged, with a (possibly new)
    /// header: the same shared-memory buffer, no copy. A raw frame that came
    /// from another machine (not in shared memory) is put in this output's
    /// pool once, so the consumers on this machine read it in place rather
    /// than each receiving a copy through its socket.
    ///
    /// A shared-memory buffer this process held while it was not scheduled
    /// for over ~100 ms (stopped, starved) has had its zenoh watchdog expire:
    /// its bytes are intact (we hold it), but a receiver would drop it as
    /// invalid. It is copied into this output's pool instead, counted in the
    /// output's `stale_copies`.
    pub fn forward(&mut self, output: &str, header: Header, payload: &Payload) -> Result<()> {
        if !self.within_media_limit(output, &header)? {
            return Ok(());
        }
        let raw = matches!(header, Header::Video(_) | Header::Audio(_));
        let remote = raw && !payload.is_shm() && !payload.is_empty();
        let stale = payload.is_stale();
        if (remote || stale) && self.config.transport.shared_memory {
            let mut buf = self.alloc(output, payload.len())?;
            buf.copy_from_slice(&payload.as_slice());
            if stale {
                let out = self.output_mut(output)?;
                out.counters.stale_copies.fetch_add(1, Ordering::Relaxed);
            }
            return self.send(output, header, buf);
        }
        self.put(output, header, payload.zbytes().clone())
    }

    fn put(&mut self, output: &str, header: Header, bytes: ZBytes) -> Result<()> {
        let node = self.config.node_id.clone();
        let no_drop = self.no_drop.load(Ordering::Relaxed);
        let out = self.output_mut(output)?;
        if out.closed {
            bail!("node `{node}` output `{output}` was already closed");
        }
        let len = bytes.len() as u64;
        let is_eos = matches!(header, Header::EndOfStream);
        let envelope = Envelope {
            seq: out.seq,
            no_drop,
            header,
        };
        out.seq += 1;
        out.publisher
            .put(bytes)
            .attachment(envelope.encode())
            .wait()
            .map_err(|e| anyhow!("node `{node}` sending on `{output}`: {e}"))?;
        if is_eos {
            out.closed = true;
            out.closed_at_ns = crate::clock::now_ns();
            let at = out.closed_at_ns.to_string();
            let key = keys::closed(&self.config.run_id, &node, output);
            let _ = self.session.put(key, at).wait();
        } else {
            crate::cpu::mark(crate::cpu::Mark::FirstMessage);
            out.counters.sent.fetch_add(1, Ordering::Relaxed);
            out.counters.bytes.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ends one output: consumers see [`Event::InputClosed`].
    pub fn close_output(&mut self, output: &str) -> Result<()> {
        if self.output_mut(output)?.closed {
            return Ok(());
        }
        self.put(output, Header::EndOfStream, ZBytes::new())
    }
}
