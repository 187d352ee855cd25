//! Tight encoding (TightVNC; rfbproto "Tight Encoding"): fill, JPEG and
//! basic compression with the copy, palette and gradient filters, over four
//! persistent zlib streams. With our pixel format a TPIXEL is 3 bytes R, G, B.

use std::collections::VecDeque;

use crate::inflate::Inflater;
use crate::reader::Cur;
use crate::{Error, Event};

/// Data shorter than this is sent without zlib.
const MIN_TO_COMPRESS: usize = 12;

pub(crate) enum Filter {
    Copy,
    Palette(Vec<[u8; 3]>),
    Gradient,
}

pub(crate) enum Body<'a> {
    Fill([u8; 3]),
    Jpeg(&'a [u8]),
    Basic { stream: usize, filter: Filter, compressed: bool, data: &'a [u8], expected: usize },
}

/// A fully received Tight rectangle, not yet decoded.
pub(crate) struct Parsed<'a> {
    ctrl: u8,
    body: Body<'a>,
}

/// Compact length: 1 to 3 bytes, 7 + 7 + 8 bits, little-endian groups.
fn compact_len(c: &mut Cur<'_>) -> Option<usize> {
    let b0 = c.u8()?;
    let mut len = usize::from(b0 & 0x7f);
    if b0 & 0x80 != 0 {
        let b1 = c.u8()?;
        len |= usize::from(b1 & 0x7f) << 7;
        if b1 & 0x80 != 0 {
            len |= usize::from(c.u8()?) << 14;
        }
    }
    Some(len)
}

fn checked_len(len: usize, max: usize) -> Result<usize, Error> {
    if len > max {
        return Err(Error::too_large("tight data", len as u64, max as u64));
    }
    Ok(len)
}

/// Parses one Tight rectangle body. `Ok(None)`: more bytes are needed.
pub(crate) fn parse<'a>(c: &mut Cur<'a>, w: u16, h: u16, max: usize) -> Result<Option<Parsed<'a>>, Error> {
    let (wu, hu) = (usize::from(w), usize::from(h));
    let Some(ctrl) = c.u8() else { return Ok(None) };
    let body = match ctrl >> 4 {
        0x8 => match c.array::<3>() {
            Some(rgb) => Body::Fill(rgb),
            None => return Ok(None),
        },
        0x9 => {
            let Some(len) = compact_len(c) else { return Ok(None) };
            let len = checked_len(len, max)?;
            match c.take(len) {
                Some(d) => Body::Jpeg(d),
                None => return Ok(None),
            }
        }
        t if t & 0x8 == 0 => {
            let stream = usize::from(t & 0x3);
            let filter_id = if t & 0x4 != 0 {
                match c.u8() {
                    Some(f) => f,
                    None => return Ok(None),
                }
            } else {
                0
            };
            let (filter, expected) = match filter_id {
                0 => (Filter::Copy, wu.saturating_mul(hu).saturating_mul(3)),
                1 => {
                    let Some(n) = c.u8() else { return Ok(None) };
                    let n = usize::from(n) + 1;
                    let Some(raw) = c.take(n * 3) else { return Ok(None) };
                    let pal: Vec<[u8; 3]> = raw.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
                    let expected = if n == 2 { wu.div_ceil(8) * hu } else { wu.saturating_mul(hu) };
                    (Filter::Palette(pal), expected)
                }
                2 => (Filter::Gradient, wu.saturating_mul(hu).saturating_mul(3)),
                f => return Err(Error::Protocol(format!("unknown tight filter {f}"))),
            };
            if expected < MIN_TO_COMPRESS {
                match c.take(expected) {
                    Some(data) => Body::Basic { stream, filter, compressed: false, data, expected },
                    None => return Ok(None),
                }
            } else {
                let Some(len) = compact_len(c) else { return Ok(None) };
                let len = checked_len(len, max)?;
                match c.take(len) {
                    Some(data) => Body::Basic { stream, filter, compressed: true, data, expected },
                    None => return Ok(None),
                }
            }
        }
        t => return Err(Error::Protocol(format!("unsupported tight compression type {t}"))),
    };
    Ok(Some(Parsed { ctrl, body }))
}

/// Decodes a parsed Tight rectangle (already known to lie in the framebuffer).
pub(crate) fn decode(
    streams: &mut [Inflater; 4],
    parsed: Parsed<'_>,
    x: u16,
    y: u16,
    w: u16,
    h: u16,
    events: &mut VecDeque<Event>,
) -> Result<(), Error> {
    for (i, s) in streams.iter_mut().enumerate() {
        if parsed.ctrl & (1 << i) != 0 {
            s.reset();
        }
    }
    let (wu, hu) = (usize::from(w), usize::from(h));
    match parsed.body {
        Body::Fill(rgb) => {
            if wu > 0 && hu > 0 {
                events.push_back(Event::Fill { x, y, width: w, height: h, rgb });
            }
        }
        Body::Jpeg(data) => {
            let rgba = decode_jpeg(data, w, h)?;
            if wu > 0 && hu > 0 {
                events.push_back(Event::Pixels { x, y, width: w, height: h, rgba });
            }
        }
        Body::Basic { stream, filter, compressed, data, expected } => {
            let owned;
            let bytes: &[u8] = if compressed {
                let inf = streams.get_mut(stream).ok_or_else(|| Error::proto("bad tight stream"))?;
                // Deflate cannot expand more than ~1032:1; refuse before allocating.
                if expected > data.len().saturating_mul(1100).saturating_add(4096) {
                    return Err(Error::Decompress("compressed data too short for the rectangle".into()));
                }
                let mut buf = vec![0u8; expected];
                let mut r = inf.reader(data);
                r.read_exact(&mut buf)?;
                r.finish()?;
                owned = buf;
                &owned
            } else {
                data
            };
            if wu == 0 || hu == 0 {
                return Ok(());
            }
            let rgba = match filter {
                Filter::Copy => rgb_to_rgba(bytes),
                Filter::Gradient => gradient(bytes, wu),
                Filter::Palette(pal) => palette(bytes, &pal, wu, hu)?,
            };
            events.push_back(Event::Pixels { x, y, width: w, height: h, rgba });
        }
    }
    Ok(())
}

fn rgb_to_rgba(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for p in rgb.chunks_exact(3) {
        out.extend_from_slice(&[p[0], p[1], p[2], 255]);
    }
    out
}

/// Gradient filter: each channel is predicted as `left + up - upleft`
/// (clamped to 0..=255, missing neighbours are 0) and the data is the
/// difference modulo 256.
fn gradient(diff: &[u8], w: usize) -> Vec<u8> {
    let mut out = vec![0u8; diff.len() / 3 * 4];
    let stride = w * 4;
    for (i, d) in diff.chunks_exact(3).enumerate() {
        let (row, col) = (i / w, i % w);
        let o = i * 4;
        for ch in 0..3 {
            let left = if col > 0 { i32::from(out[o - 4 + ch]) } else { 0 };
            let up = if row > 0 { i32::from(out[o - stride + ch]) } else { 0 };
            let upleft = if row > 0 && col > 0 { i32::from(out[o - stride - 4 + ch]) } else { 0 };
            let pred = (left + up - upleft).clamp(0, 255) as u8;
            out[o + ch] = pred.wrapping_add(d[ch]);
        }
        out[o + 3] = 255;
    }
    out
}

fn palette(idx: &[u8], pal: &[[u8; 3]], w: usize, h: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(w * h * 4);
    let bad = || Error::proto("tight palette index out of range");
    if pal.len() == 2 {
        let row_bytes = w.div_ceil(8);
        for row in idx.chunks_exact(row_bytes).take(h) {
            for col in 0..w {
                let bit = (row[col / 8] >> (7 - col % 8)) & 1;
                let c = pal.get(usize::from(bit)).ok_or_else(bad)?;
                out.extend_from_slice(&[c[0], c[1], c[2], 255]);
            }
        }
    } else {
        for &i in idx {
            let c = pal.get(usize::from(i)).ok_or_else(bad)?;
            out.extend_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    Ok(out)
}

fn decode_jpeg(data: &[u8], w: u16, h: u16) -> Result<Vec<u8>, Error> {
    let mut dec = jpeg_decoder::Decoder::new(data);
    dec.read_info().map_err(|e| Error::Jpeg(e.to_string()))?;
    let info = dec.info().ok_or_else(|| Error::Jpeg("missing image info".into()))?;
    if info.width != w || info.height != h {
        return Err(Error::Jpeg(format!(
            "image is {}x{} but the rectangle is {w}x{h}",
            info.width, info.height
        )));
    }
    let n = usize::from(w) * usize::from(h);
    dec.set_max_decoding_buffer_size(n.saturating_mul(8).max(1 << 16));
    let px = dec.decode().map_err(|e| Error::Jpeg(e.to_string()))?;
    let mut out = Vec::with_capacity(n * 4);
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            for p in px.chunks_exact(3).take(n) {
                out.extend_from_slice(&[p[0], p[1], p[2], 255]);
            }
        }
        jpeg_decoder::PixelFormat::L8 => {
            for &l in px.iter().take(n) {
                out.extend_from_slice(&[l, l, l, 255]);
            }
        }
        jpeg_decoder::PixelFormat::L16 => {
            for p in px.chunks_exact(2).take(n) {
                out.extend_from_slice(&[p[0], p[0], p[0], 255]);
            }
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            for p in px.chunks_exact(4).take(n) {
                let k = u16::from(p[3]);
                let f = |c: u8| ((u16::from(c) * k) / 255) as u8;
                out.extend_from_slice(&[f(p[0]), f(p[1]), f(p[2]), 255]);
            }
        }
    }
    if out.len() != n * 4 {
        return Err(Error::Jpeg("decoded image is shorter than its header says".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn compact_lengths() {
        assert_eq!(compact_len(&mut Cur::new(&[0x05])), Some(5));
        assert_eq!(compact_len(&mut Cur::new(&[0x90, 0x4e])), Some(10000));
        assert_eq!(compact_len(&mut Cur::new(&[0xff, 0xff, 0xff])), Some(4_194_303));
        assert_eq!(compact_len(&mut Cur::new(&[0x80])), None);
    }

    #[test]
    fn gradient_predicts() {
        // 2x2: first pixel (10,20,30); diffs zero elsewhere copy the prediction.
        let diff = [10, 20, 30, 1, 1, 1, 2, 2, 2, 0, 0, 0];
        let out = gradient(&diff, 2);
        assert_eq!(&out[0..4], &[10, 20, 30, 255]);
        assert_eq!(&out[4..8], &[11, 21, 31, 255]);
        assert_eq!(&out[8..12], &[12, 22, 32, 255]);
        // left 12 + up 11 - upleft 10 = 13
        assert_eq!(&out[12..16], &[13, 23, 33, 255]);
    }
}
