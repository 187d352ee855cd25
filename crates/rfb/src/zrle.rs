//! ZRLE encoding (RFC 6143 §7.7.6): 64x64 tiles through one persistent zlib
//! stream. With our pixel format (32 bpp, depth 24) a CPIXEL is 3 bytes R, G, B.
//!
//! Rectangles are emitted one band of tile rows (64 pixel rows) at a time;
//! consecutive solid bands of one colour are merged into a single
//! [`Event::Fill`], so a uniformly coloured rectangle yields one `Fill`.

use std::collections::VecDeque;

use crate::inflate::{InflateReader, Inflater};
use crate::{Error, Event};

const TILE: usize = 64;

fn read_cpixel(r: &mut InflateReader<'_>) -> Result<[u8; 3], Error> {
    let mut p = [0u8; 3];
    r.read_exact(&mut p)?;
    Ok(p)
}

fn read_palette(r: &mut InflateReader<'_>, n: usize, pal: &mut Vec<[u8; 3]>) -> Result<(), Error> {
    pal.clear();
    for _ in 0..n {
        pal.push(read_cpixel(r)?);
    }
    Ok(())
}

/// Run length: 1 + sum of bytes up to and including the first byte != 255.
fn read_run(r: &mut InflateReader<'_>, max: usize) -> Result<usize, Error> {
    let mut len = 1usize;
    loop {
        let b = r.read_u8()?;
        len += usize::from(b);
        if len > max {
            return Err(Error::proto("zrle run exceeds the tile"));
        }
        if b != 255 {
            return Ok(len);
        }
    }
}

/// Decodes one tile into `tile` (RGB, `tw * th * 3`). Returns the colour if
/// the tile is solid (subencoding 1).
fn decode_tile(
    r: &mut InflateReader<'_>,
    tw: usize,
    th: usize,
    tile: &mut [u8],
    pal: &mut Vec<[u8; 3]>,
) -> Result<Option<[u8; 3]>, Error> {
    let n = tw * th;
    let tile = &mut tile[..n * 3];
    let sub = r.read_u8()?;
    match sub {
        0 => r.read_exact(tile)?,
        1 => {
            let c = read_cpixel(r)?;
            for px in tile.chunks_exact_mut(3) {
                px.copy_from_slice(&c);
            }
            return Ok(Some(c));
        }
        2..=16 => {
            let p = usize::from(sub);
            read_palette(r, p, pal)?;
            let bits = match p {
                2 => 1,
                3..=4 => 2,
                _ => 4,
            };
            let row_bytes = (tw * bits).div_ceil(8);
            let mut row = [0u8; TILE];
            let mask = (1u8 << bits) - 1;
            for ty in 0..th {
                r.read_exact(&mut row[..row_bytes])?;
                for tx in 0..tw {
                    let bit = tx * bits;
                    let idx = (row[bit / 8] >> (8 - bits - bit % 8)) & mask;
                    let c = pal.get(usize::from(idx)).ok_or_else(|| Error::proto("zrle palette index out of range"))?;
                    let o = (ty * tw + tx) * 3;
                    tile[o..o + 3].copy_from_slice(c);
                }
            }
        }
        128 => {
            let mut i = 0;
            while i < n {
                let c = read_cpixel(r)?;
                let len = read_run(r, n - i)?;
                for px in tile[i * 3..(i + len) * 3].chunks_exact_mut(3) {
                    px.copy_from_slice(&c);
                }
                i += len;
            }
        }
        130..=255 => {
            let p = usize::from(sub - 128);
            read_palette(r, p, pal)?;
            let mut i = 0;
            while i < n {
                let b = r.read_u8()?;
                let c = *pal.get(usize::from(b & 0x7f)).ok_or_else(|| Error::proto("zrle palette index out of range"))?;
                let len = if b & 0x80 != 0 { read_run(r, n - i)? } else { 1 };
                for px in tile[i * 3..(i + len) * 3].chunks_exact_mut(3) {
                    px.copy_from_slice(&c);
                }
                i += len;
            }
        }
        _ => return Err(Error::Protocol(format!("invalid zrle subencoding {sub}"))),
    }
    Ok(None)
}

/// Decodes the zlib payload of one ZRLE rectangle (already known to lie in
/// the framebuffer) and pushes its events.
pub(crate) fn decode(
    inf: &mut Inflater,
    data: &[u8],
    x: u16,
    y: u16,
    w: u16,
    h: u16,
    events: &mut VecDeque<Event>,
) -> Result<(), Error> {
    let mut r = inf.reader(data);
    let (wu, hu) = (usize::from(w), usize::from(h));
    if wu == 0 || hu == 0 {
        return r.finish();
    }
    let mut tile = vec![0u8; TILE * TILE * 3];
    let mut pal = Vec::with_capacity(128);
    // Pending merged fill: (first row, rows, colour).
    let mut pending: Option<(u16, u16, [u8; 3])> = None;
    let flush = |pending: &mut Option<(u16, u16, [u8; 3])>, events: &mut VecDeque<Event>| {
        if let Some((py, ph, rgb)) = pending.take() {
            events.push_back(Event::Fill { x, y: py, width: w, height: ph, rgb });
        }
    };
    let mut ty = 0usize;
    while ty < hu {
        let th = TILE.min(hu - ty);
        let mut band = vec![0u8; wu * th * 4];
        let mut solid: Option<Option<[u8; 3]>> = None; // None = no tile yet
        let mut tx = 0usize;
        while tx < wu {
            let tw = TILE.min(wu - tx);
            let c = decode_tile(&mut r, tw, th, &mut tile, &mut pal)?;
            solid = Some(match (solid, c) {
                (None, c) => c,
                (Some(Some(a)), Some(b)) if a == b => Some(a),
                _ => None,
            });
            for row in 0..th {
                let src = &tile[row * tw * 3..(row + 1) * tw * 3];
                let dst = &mut band[(row * wu + tx) * 4..(row * wu + tx + tw) * 4];
                for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                    d[..3].copy_from_slice(s);
                    d[3] = 255;
                }
            }
            tx += tw;
        }
        // Both fit in u16: ty < h and th <= h - ty.
        let band_y = y.saturating_add(u16::try_from(ty).unwrap_or(u16::MAX));
        let band_h = u16::try_from(th).unwrap_or(u16::MAX);
        match solid.flatten() {
            Some(c) => match &mut pending {
                Some((_, ph, pc)) if *pc == c => *ph = ph.saturating_add(band_h),
                _ => {
                    flush(&mut pending, events);
                    pending = Some((band_y, band_h, c));
                }
            },
            None => {
                flush(&mut pending, events);
                events.push_back(Event::Pixels { x, y: band_y, width: w, height: band_h, rgba: band });
            }
        }
        ty += th;
    }
    flush(&mut pending, events);
    r.finish()
}
