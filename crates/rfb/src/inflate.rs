//! Persistent zlib streams (ZRLE uses one, Tight four) read through a
//! bounded pull reader: output is produced only as fast as the decoder asks
//! for it, so a zlib bomb can never make the client allocate more than the
//! decoded size of the rectangle it claims to describe.

use flate2::{Decompress, FlushDecompress, Status};

use crate::Error;

/// Staging buffer for small reads (subencoding bytes, palettes, runs).
const CHUNK: usize = 8 * 1024;

/// One persistent zlib stream.
pub(crate) struct Inflater {
    z: Decompress,
    ended: bool,
}

impl Inflater {
    pub(crate) fn new() -> Self {
        Inflater { z: Decompress::new(true), ended: false }
    }

    /// Start a new zlib stream (Tight reset bits).
    pub(crate) fn reset(&mut self) {
        self.z.reset(true);
        self.ended = false;
    }

    /// Reader over the compressed bytes of one rectangle.
    pub(crate) fn reader<'a>(&'a mut self, input: &'a [u8]) -> InflateReader<'a> {
        InflateReader { inf: self, input, in_pos: 0, chunk: Vec::new(), chunk_pos: 0 }
    }
}

pub(crate) struct InflateReader<'a> {
    inf: &'a mut Inflater,
    input: &'a [u8],
    in_pos: usize,
    chunk: Vec<u8>,
    chunk_pos: usize,
}

impl InflateReader<'_> {
    /// Inflate into `dst`, returning the number of bytes produced. Errors when
    /// no progress at all is possible (truncated data or ended stream).
    fn inflate_into(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        if self.inf.ended {
            return Err(Error::Decompress("zlib stream already ended".into()));
        }
        let before_in = self.inf.z.total_in();
        let before_out = self.inf.z.total_out();
        let rest = self.input.get(self.in_pos..).unwrap_or(&[]);
        let status = self
            .inf
            .z
            .decompress(rest, dst, FlushDecompress::None)
            .map_err(|e| Error::Decompress(e.to_string()))?;
        let consumed = usize::try_from(self.inf.z.total_in() - before_in).unwrap_or(usize::MAX);
        let produced = usize::try_from(self.inf.z.total_out() - before_out).unwrap_or(usize::MAX);
        self.in_pos = self.in_pos.saturating_add(consumed).min(self.input.len());
        if status == Status::StreamEnd {
            self.inf.ended = true;
        }
        if consumed == 0 && produced == 0 {
            return Err(Error::Decompress("compressed data ends before the rectangle is complete".into()));
        }
        Ok(produced.min(dst.len()))
    }

    /// Fill `out` completely with decompressed bytes.
    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Error> {
        let mut filled = 0;
        while filled < out.len() {
            let avail = self.chunk.len() - self.chunk_pos;
            if avail > 0 {
                let n = avail.min(out.len() - filled);
                out[filled..filled + n].copy_from_slice(&self.chunk[self.chunk_pos..self.chunk_pos + n]);
                self.chunk_pos += n;
                filled += n;
                continue;
            }
            let want = out.len() - filled;
            if want >= CHUNK {
                filled += self.inflate_into(&mut out[filled..])?;
            } else {
                let mut chunk = std::mem::take(&mut self.chunk);
                chunk.resize(CHUNK, 0);
                let got = self.inflate_into(&mut chunk);
                match got {
                    Ok(n) => {
                        chunk.truncate(n);
                        self.chunk = chunk;
                        self.chunk_pos = 0;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    pub(crate) fn read_u8(&mut self) -> Result<u8, Error> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// The rectangle is decoded: the rest of its compressed bytes must not
    /// produce any further output.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        let too_long = || Error::Decompress("compressed data is longer than the rectangle".into());
        if self.chunk_pos < self.chunk.len() {
            return Err(too_long());
        }
        let mut scratch = [0u8; 64];
        loop {
            if self.inf.ended {
                if self.in_pos < self.input.len() {
                    return Err(Error::Decompress("data after the end of the zlib stream".into()));
                }
                return Ok(());
            }
            match self.inflate_into(&mut scratch) {
                Ok(0) => {
                    if self.in_pos >= self.input.len() {
                        return Ok(());
                    }
                }
                Ok(_) => return Err(too_long()),
                // No progress possible: all input consumed and nothing pending.
                Err(Error::Decompress(_)) if self.in_pos >= self.input.len() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// Persistent compressor emitting sync-flushed chunks, as VNC servers do.
    pub(crate) struct Deflater(Compress);

    impl Deflater {
        pub(crate) fn new() -> Self {
            Deflater(Compress::new(Compression::default(), true))
        }

        pub(crate) fn chunk(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(data.len() * 2 + 64);
            let start_in = self.0.total_in();
            loop {
                let done = usize::try_from(self.0.total_in() - start_in).unwrap_or(0);
                if out.capacity() - out.len() < 64 {
                    out.reserve(4096);
                }
                self.0.compress_vec(&data[done..], &mut out, FlushCompress::Sync).unwrap();
                let done = usize::try_from(self.0.total_in() - start_in).unwrap_or(0);
                if done == data.len() && out.capacity() > out.len() {
                    break;
                }
            }
            out
        }
    }

    #[test]
    fn persistent_stream_over_chunks() {
        let mut d = Deflater::new();
        let mut inf = Inflater::new();
        for i in 0..5u8 {
            let data: Vec<u8> = (0..10_000u32).map(|j| (j as u8).wrapping_mul(i)).collect();
            let c = d.chunk(&data);
            let mut r = inf.reader(&c);
            let mut out = vec![0u8; data.len()];
            r.read_exact(&mut out[..1]).unwrap();
            r.read_exact(&mut out[1..]).unwrap();
            r.finish().unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn too_long_and_too_short() {
        let mut d = Deflater::new();
        let c = d.chunk(&[7u8; 100]);
        let mut inf = Inflater::new();
        let mut r = inf.reader(&c);
        let mut out = [0u8; 99];
        r.read_exact(&mut out).unwrap();
        assert!(r.finish().is_err());

        let mut inf = Inflater::new();
        let mut r = inf.reader(&c);
        let mut out = [0u8; 101];
        assert!(r.read_exact(&mut out).is_err());
    }

    #[test]
    fn bomb_is_bounded() {
        // 50 MB of zeros compresses to ~50 KB; ask for 1000 bytes only.
        let mut d = Deflater::new();
        let c = d.chunk(&vec![0u8; 50_000_000]);
        let mut inf = Inflater::new();
        let mut r = inf.reader(&c);
        let mut out = [0u8; 1000];
        r.read_exact(&mut out).unwrap();
        assert!(matches!(r.finish(), Err(Error::Decompress(_))));
    }
}
