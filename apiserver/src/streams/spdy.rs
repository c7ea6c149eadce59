//! The client half of SPDY/3.1 as Kubernetes speaks it (moby/spdystream):
//! streams opened by SYN_STREAM with a header block, data frames, FIN to
//! half-close. Header blocks form one zlib stream per connection; the
//! peer's replies carry nothing we need, so we never inflate them, and ours
//! are deflated without SPDY's preset dictionary, which readers accept
//! (the dictionary is only demanded when the zlib header announces it).
//! spdystream has no flow control, so WINDOW_UPDATE is never needed.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const FLAG_FIN: u8 = 0x01;
const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
pub const PING: u16 = 6;
/// Frames carry at most 2^24-1 bytes; data is cut well below that.
const MAX_DATA: usize = 32 * 1024;

pub enum Frame {
    Data { stream: u32, fin: bool, data: Bytes },
    Control { kind: u16, flags: u8, body: Bytes },
}

/// The next frame, or `None` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    Ok(Some(if word & 0x8000_0000 != 0 {
        Frame::Control {
            kind: (word & 0xffff) as u16,
            flags,
            body: body.into(),
        }
    } else {
        Frame::Data {
            stream: word & 0x7fff_ffff,
            fin: flags & FLAG_FIN != 0,
            data: body.into(),
        }
    }))
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.extend_from_slice(body);
    out
}

/// A PING echoed back, as the protocol asks of whoever receives one.
pub fn pong(body: &[u8]) -> Vec<u8> {
    control(PING, 0, body)
}

/// Data frames for `data` on `stream` (several when it is large); `fin`
/// marks the last (an empty `data` with `fin` half-closes the stream).
pub fn data(stream: u32, data: &[u8], fin: bool) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(data.len() + 8 * (data.len() / MAX_DATA + 1));
    let mut chunks = data.chunks(MAX_DATA).peekable();
    if chunks.peek().is_none() {
        out.put_u32(stream & 0x7fff_ffff);
        out.put_u32(if fin { u32::from(FLAG_FIN) << 24 } else { 0 });
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let flags = if fin && last { FLAG_FIN } else { 0 };
        out.put_u32(stream & 0x7fff_ffff);
        out.put_u32((u32::from(flags) << 24) | chunk.len() as u32);
        out.extend_from_slice(chunk);
    }
    out.to_vec()
}

/// Opens streams: SYN_STREAM frames sharing the connection's header
/// compressor.
pub struct Opener {
    deflate: Compress,
}

impl Default for Opener {
    fn default() -> Self {
        Opener {
            deflate: Compress::new(Compression::fast(), true),
        }
    }
}

impl Opener {
    /// A SYN_STREAM for `stream` with `headers` (names lowercase, as SPDY
    /// requires).
    pub fn syn_stream(&mut self, stream: u32, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.put_u32(headers.len() as u32);
        for (name, value) in headers {
            raw.put_u32(name.len() as u32);
            raw.extend_from_slice(name.to_ascii_lowercase().as_bytes());
            raw.put_u32(value.len() as u32);
            raw.extend_from_slice(value.as_bytes());
        }
        let mut block = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        // A sync flush ends each block on a byte boundary the reader can
        // decode without what comes next.
        loop {
            block.reserve(raw.len() + 64);
            let before = self.deflate.total_in();
            // Compressing into a Vec cannot fail; a stalled call just
            // grows the buffer on the next turn.
            let _ = self
                .deflate
                .compress_vec(input, &mut block, FlushCompress::Sync);
            let used = (self.deflate.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && block.len() < block.capacity() {
                break;
            }
        }
        let mut body = Vec::with_capacity(10 + block.len());
        body.put_u32(stream & 0x7fff_ffff);
        body.put_u32(0); // associated stream
        body.put_u16(0); // priority and slot
        body.extend_from_slice(&block);
        control(SYN_STREAM, 0, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    #[tokio::test]
    async fn frames_round_trip() {
        let mut opener = Opener::default();
        let mut wire = opener.syn_stream(1, &[("streamType", "error")]);
        wire.extend(opener.syn_stream(3, &[("streamtype", "stdout")]));
        wire.extend(data(3, b"hello", false));
        wire.extend(data(3, b"", true));
        let mut r = &wire[..];
        let mut inflate = Decompress::new(true);
        for (id, want) in [(1u32, "error"), (3, "stdout")] {
            let Some(Frame::Control { kind, body, .. }) = read_frame(&mut r).await.unwrap() else {
                panic!("control frame expected")
            };
            assert_eq!(kind, SYN_STREAM);
            assert_eq!(u32::from_be_bytes(body[..4].try_into().unwrap()), id);
            let mut out = Vec::with_capacity(256);
            inflate
                .decompress_vec(&body[10..], &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(&out[..4], &1u32.to_be_bytes());
            assert_eq!(&out[8..18], b"streamtype");
            assert!(out.ends_with(want.as_bytes()));
        }
        let Some(Frame::Data { stream, fin, data }) = read_frame(&mut r).await.unwrap() else {
            panic!("data frame expected")
        };
        assert_eq!((stream, fin, &data[..]), (3, false, &b"hello"[..]));
        let Some(Frame::Data { fin, data, .. }) = read_frame(&mut r).await.unwrap() else {
            panic!("data frame expected")
        };
        assert!(fin && data.is_empty());
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[test]
    fn big_data_is_cut_into_frames() {
        let wire = data(5, &vec![7u8; MAX_DATA * 2 + 1], true);
        assert_eq!(wire.len(), MAX_DATA * 2 + 1 + 24);
        // Only the last frame carries FIN.
        assert_eq!(wire[4], 0);
        assert_eq!(wire[8 + MAX_DATA + 4], 0);
        assert_eq!(wire[16 + 2 * MAX_DATA + 4], FLAG_FIN);
    }
}
