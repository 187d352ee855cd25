//! Writes the hand-made seed corpus into `fuzz/corpus/<target>/`.
//!
//! Run with `cargo run -p bascule-fuzzing --example make_seeds`. The output is deterministic, so
//! re-running it rewrites the same `seed-*` files; entries found by the fuzzer (named by their
//! hash) are left alone.
//!
//! RFB seeds are server bytes *after* the handshake for the 64x48 framebuffer that the
//! `rfb_server_stream` oracle announces, except the `seed-handshake-*` ones, which are whole
//! sessions for the password-configured variant.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bascule_fuzzing::wire::*;
use bascule_proto::{
    ClientMessage, MAX_MESSAGE_TEXT, MAX_NAME, NoticeLevel, Rect, ServerMessage, TileCodec,
    control_state,
};
use flate2::{Compress, Compression, FlushCompress};

/// A persistent zlib stream, flushed at the end of each rectangle as VNC servers do.
struct Zlib(Compress);

impl Zlib {
    fn new() -> Zlib {
        Zlib(Compress::new(Compression::default(), true))
    }

    fn chunk(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let before = self.0.total_in();
        loop {
            let done = usize::try_from(self.0.total_in() - before).unwrap();
            out.reserve(256);
            self.0
                .compress_vec(&data[done..], &mut out, FlushCompress::Sync)
                .unwrap();
            if usize::try_from(self.0.total_in() - before).unwrap() == data.len()
                && out.len() < out.capacity()
            {
                return out;
            }
        }
    }
}

/// Deterministic "screen content": a few colours in a pattern.
fn rgb_pattern(w: usize, h: usize, seed: usize) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| {
            let v = (((i % w) / 3 + (i / w) / 2 + seed) % 5) as u8 * 50;
            [v, 255 - v, v / 2]
        })
        .collect()
}

fn rgbx(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 0])
        .collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ----- ZRLE tiles (RFC 6143 §7.7.6); a CPIXEL is 3 bytes with the client's pixel format -----

fn zrle_raw(tw: usize, th: usize) -> Vec<u8> {
    cat(&[&[0], &rgb_pattern(tw, th, 1)])
}

fn zrle_solid(rgb: [u8; 3]) -> Vec<u8> {
    cat(&[&[1], &rgb])
}

/// Packed palette with `n` colours (2..=16).
fn zrle_packed(tw: usize, th: usize, n: u8) -> Vec<u8> {
    let mut v = vec![n];
    for i in 0..n {
        v.extend_from_slice(&[i * 15, 200 - i * 10, 3]);
    }
    let bits = match n {
        2 => 1,
        3..=4 => 2,
        _ => 4,
    };
    for y in 0..th {
        let mut row = vec![0u8; (tw * bits).div_ceil(8)];
        for x in 0..tw {
            let idx = ((x + y) % usize::from(n)) as u8;
            let bit = x * bits;
            row[bit / 8] |= idx << (8 - bits - bit % 8);
        }
        v.extend(row);
    }
    v
}

/// Run length as 255-bytes then a final byte.
fn run_len(mut len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    len -= 1;
    while len >= 255 {
        v.push(255);
        len -= 255;
    }
    v.push(len as u8);
    v
}

fn zrle_plain_rle(tw: usize, th: usize) -> Vec<u8> {
    let n = tw * th;
    let first = n / 3 + 1;
    cat(&[
        &[128],
        &[10, 20, 30],
        &run_len(first),
        &[40, 50, 60],
        &run_len(n - first),
    ])
}

fn zrle_palette_rle(tw: usize, th: usize) -> Vec<u8> {
    let n = tw * th;
    let mut v = vec![128 + 3, 255, 0, 0, 0, 255, 0, 0, 0, 255];
    // One single pixel of colour 0, then a run of colour 1, then the rest in colour 2.
    v.push(0);
    let run = (n - 1) / 2;
    v.push(0x80 | 1);
    v.extend(run_len(run));
    v.push(0x80 | 2);
    v.extend(run_len(n - 1 - run));
    v
}

fn zrle_rect(z: &mut Zlib, x: u16, y: u16, w: u16, h: u16, tiles: &[u8]) -> Vec<u8> {
    let data = z.chunk(tiles);
    cat(&[
        &rect(x, y, w, h, enc::ZRLE),
        &u32::try_from(data.len()).unwrap().to_be_bytes(),
        &data,
    ])
}

// ----- Tight (rfbproto "Tight Encoding"); a TPIXEL is 3 bytes -----

fn tight_rect(x: u16, y: u16, w: u16, h: u16, body: &[u8]) -> Vec<u8> {
    cat(&[&rect(x, y, w, h, enc::TIGHT), body])
}

/// Basic compression with an explicit filter; data under 12 bytes is sent raw.
fn tight_basic(z: &mut Zlib, ctrl: u8, filter: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ctrl];
    if let Some(filter) = filter {
        v[0] |= 0x40;
        v.extend_from_slice(filter);
    }
    if data.len() < 12 {
        v.extend_from_slice(data);
    } else {
        let c = z.chunk(data);
        v.extend(compact_len(c.len()));
        v.extend(c);
    }
    v
}

fn jpeg(w: u16, h: u16, grey: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 80);
    if grey {
        let px: Vec<u8> = (0..usize::from(w) * usize::from(h))
            .map(|i| (i * 3) as u8)
            .collect();
        encoder
            .encode(&px, w, h, jpeg_encoder::ColorType::Luma)
            .unwrap();
    } else {
        let px = rgb_pattern(usize::from(w), usize::from(h), 2);
        encoder
            .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
    }
    out
}

fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    let channels = if alpha { 4 } else { 3 };
    encoder.set_color(if alpha {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let px: Vec<u8> = (0..(w * h * channels) as usize)
        .map(|i| (i * 13) as u8)
        .collect();
    writer.write_image_data(&px).unwrap();
    writer.finish().unwrap();
    out
}

fn rfb_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let raw = |x, y, w: u16, h: u16| {
        cat(&[
            &rect(x, y, w, h, enc::RAW),
            &rgbx(&rgb_pattern(usize::from(w), usize::from(h), 0)),
        ])
    };
    seeds.push(("raw", framebuffer_update(&[raw(4, 4, 8, 8)])));
    seeds.push((
        "raw-full-width",
        framebuffer_update(&[raw(0, 46, 64, 2), raw(63, 0, 1, 48)]),
    ));
    seeds.push((
        "raw-empty",
        framebuffer_update(&[raw(0, 0, 0, 0), raw(64, 48, 0, 0)]),
    ));
    seeds.push((
        "copyrect",
        framebuffer_update(&[cat(&[&rect(8, 8, 16, 16, enc::COPY_RECT), &[0, 0, 0, 4]])]),
    ));
    seeds.push(("update-empty", framebuffer_update(&[])));

    // ZRLE: every subencoding in one rectangle, then a second rectangle on the same stream.
    let mut z = Zlib::new();
    let tiles = cat(&[&zrle_raw(64, 8)]);
    let first = zrle_rect(&mut z, 0, 0, 64, 8, &tiles);
    let second = zrle_rect(&mut z, 0, 8, 16, 4, &zrle_packed(16, 4, 2));
    let third = zrle_rect(&mut z, 16, 8, 7, 5, &zrle_packed(7, 5, 4));
    let fourth = zrle_rect(&mut z, 23, 8, 9, 3, &zrle_packed(9, 3, 11));
    seeds.push((
        "zrle-raw-packed",
        framebuffer_update(&[first, second, third, fourth]),
    ));
    let mut z = Zlib::new();
    let a = zrle_rect(&mut z, 0, 0, 20, 20, &zrle_plain_rle(20, 20));
    let b = zrle_rect(&mut z, 20, 20, 30, 10, &zrle_palette_rle(30, 10));
    let c = zrle_rect(&mut z, 0, 20, 10, 28, &zrle_solid([9, 8, 7]));
    seeds.push(("zrle-rle", framebuffer_update(&[a, b, c])));
    // Multi-tile ZRLE after a DesktopSize to 130x70 (3x2 tiles of 64, 64, 2 by 64, 6).
    let mut z = Zlib::new();
    let tiles = cat(&[
        &zrle_solid([1, 1, 1]),
        &zrle_solid([1, 1, 1]),
        &zrle_solid([1, 1, 1]),
        &zrle_plain_rle(64, 6),
        &zrle_packed(64, 6, 16),
        &zrle_palette_rle(2, 6),
    ]);
    let resize = rect(0, 0, 130, 70, enc::DESKTOP_SIZE);
    let multi = zrle_rect(&mut z, 0, 0, 130, 70, &tiles);
    seeds.push((
        "zrle-multitile",
        cat(&[
            &framebuffer_update(&[resize]),
            &framebuffer_update(&[multi]),
        ]),
    ));

    // Tight.
    seeds.push((
        "tight-fill",
        framebuffer_update(&[tight_rect(1, 2, 30, 20, &[0x80, 200, 100, 50])]),
    ));
    let mut z0 = Zlib::new();
    let copy_small = tight_rect(
        0,
        0,
        2,
        1,
        &tight_basic(&mut z0, 0x00, None, &[1, 2, 3, 4, 5, 6]),
    );
    let copy_big = tight_rect(
        0,
        1,
        16,
        8,
        &tight_basic(&mut z0, 0x00, None, &rgb_pattern(16, 8, 3)),
    );
    seeds.push(("tight-copy", framebuffer_update(&[copy_small, copy_big])));
    let mut z1 = Zlib::new();
    let mono_bits: Vec<u8> = (0..10u8).flat_map(|y| [0xa5 ^ y, 0x80]).collect(); // 9 px wide: 2 bytes a row
    let mono = tight_rect(
        0,
        0,
        9,
        10,
        &tight_basic(
            &mut z1,
            0x10,
            Some(&[1, 1, 0, 0, 0, 255, 255, 255]),
            &mono_bits,
        ),
    );
    let idx: Vec<u8> = (0..12 * 6).map(|i| (i % 4) as u8).collect();
    let pal4 = tight_rect(
        10,
        10,
        12,
        6,
        &tight_basic(
            &mut z1,
            0x10,
            Some(&[1, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
            &idx,
        ),
    );
    let tiny_pal = tight_rect(
        30,
        30,
        2,
        2,
        &tight_basic(
            &mut z1,
            0x10,
            Some(&[1, 2, 9, 9, 9, 8, 8, 8, 7, 7, 7]),
            &[0, 1, 2, 0],
        ),
    );
    seeds.push(("tight-palette", framebuffer_update(&[mono, pal4, tiny_pal])));
    let mut z2 = Zlib::new();
    let grad = tight_rect(
        0,
        0,
        20,
        10,
        &tight_basic(&mut z2, 0x20, Some(&[2]), &rgb_pattern(20, 10, 4)),
    );
    seeds.push(("tight-gradient", framebuffer_update(&[grad])));
    // Stream 3, used twice, then reset (ctrl bit 3) and used again from a fresh compressor.
    let mut z3 = Zlib::new();
    let r1 = tight_rect(
        0,
        0,
        8,
        8,
        &tight_basic(&mut z3, 0x30, None, &rgb_pattern(8, 8, 5)),
    );
    let r2 = tight_rect(
        8,
        0,
        8,
        8,
        &tight_basic(&mut z3, 0x30, None, &rgb_pattern(8, 8, 6)),
    );
    let mut z3 = Zlib::new();
    let r3 = tight_rect(
        16,
        0,
        8,
        8,
        &tight_basic(&mut z3, 0x38, None, &rgb_pattern(8, 8, 7)),
    );
    seeds.push(("tight-streams-reset", framebuffer_update(&[r1, r2, r3])));
    let j = jpeg(16, 8, false);
    let jg = jpeg(8, 8, true);
    let jpeg_rgb = tight_rect(0, 0, 16, 8, &cat(&[&[0x90], &compact_len(j.len()), &j]));
    let jpeg_grey = tight_rect(16, 8, 8, 8, &cat(&[&[0x90], &compact_len(jg.len()), &jg]));
    seeds.push(("tight-jpeg", framebuffer_update(&[jpeg_rgb, jpeg_grey])));

    // Pseudo-encodings.
    let (cw, ch) = (10u16, 6u16);
    let mask: Vec<u8> = (0..ch).flat_map(|y| [0xf0 >> y, 0xc0]).collect();
    let cursor = cat(&[
        &rect(3, 2, cw, ch, enc::CURSOR),
        &rgbx(&rgb_pattern(10, 6, 8)),
        &mask,
    ]);
    seeds.push((
        "cursor",
        framebuffer_update(&[cursor, rect(0, 0, 0, 0, enc::CURSOR)]),
    ));
    seeds.push((
        "desktop-size",
        framebuffer_update(&[rect(0, 0, 32, 24, enc::DESKTOP_SIZE), raw(0, 0, 32, 1)]),
    ));
    let screen = cat(&[
        &7u32.to_be_bytes(),
        &[0, 0, 0, 0, 0, 80, 0, 60],
        &0u32.to_be_bytes(),
    ]);
    let ext = cat(&[
        &rect(0, 0, 80, 60, enc::EXTENDED_DESKTOP_SIZE),
        &[1, 0, 0, 0],
        &screen,
    ]);
    let ext_failed = cat(&[
        &rect(1, 3, 80, 60, enc::EXTENDED_DESKTOP_SIZE),
        &[0, 0, 0, 0],
    ]);
    seeds.push((
        "extended-desktop-size",
        framebuffer_update(&[ext, ext_failed]),
    ));
    // LastRect: the count says 0xffff, the LastRect ends the update.
    let mut last = framebuffer_update(&[raw(0, 0, 1, 1), rect(0, 0, 0, 0, enc::LAST_RECT)]);
    last[2..4].copy_from_slice(&[0xff, 0xff]);
    seeds.push(("last-rect", last));
    seeds.push((
        "qemu-key",
        framebuffer_update(&[rect(0, 0, 0, 0, enc::QEMU_EXTENDED_KEY)]),
    ));

    // Other server messages.
    seeds.push(("bell", cat(&[&bell(), &bell()])));
    seeds.push(("cut-text", server_cut_text(b"caf\xe9 au lait\n")));
    seeds.push(("colour-map", colour_map(0, 3)));
    seeds.push((
        "mixed",
        cat(&[
            &bell(),
            &framebuffer_update(&[raw(0, 0, 2, 2)]),
            &server_cut_text(b"x"),
            &colour_map(4, 1),
        ]),
    ));

    // Whole sessions, for the variant with a password and no prefix.
    let update = framebuffer_update(&[raw(0, 0, 4, 4)]);
    seeds.push((
        "handshake-none-38",
        cat(&[&handshake_none(16, 16, "bureau"), &update]),
    ));
    let auth = cat(&[
        b"RFB 003.008\n",
        &[2, 1, 2],
        &[0x5a; 16],
        &0u32.to_be_bytes(),
        &server_init(16, 16, "démo"),
    ]);
    seeds.push(("handshake-vnc-auth-38", cat(&[&auth, &update])));
    let auth_failed = cat(&[
        b"RFB 003.008\n",
        &[1, 2],
        &[1; 16],
        &1u32.to_be_bytes(),
        &6u32.to_be_bytes(),
        b"denied",
    ]);
    seeds.push(("handshake-auth-failed", auth_failed));
    seeds.push((
        "handshake-refused",
        cat(&[b"RFB 003.008\n", &[0], &4u32.to_be_bytes(), b"busy"]),
    ));
    seeds.push((
        "handshake-37",
        cat(&[b"RFB 003.007\n", &[1, 1], &server_init(8, 8, "x"), &update]),
    ));
    let v33 = cat(&[
        b"RFB 003.003\n",
        &2u32.to_be_bytes(),
        &[3; 16],
        &0u32.to_be_bytes(),
        &server_init(8, 8, ""),
    ]);
    seeds.push(("handshake-33-auth", cat(&[&v33, &update])));
    seeds.push((
        "handshake-3889",
        cat(&[
            b"RFB 003.889\n",
            &[1, 1],
            &0u32.to_be_bytes(),
            &server_init(4, 4, "mac"),
            &update,
        ]),
    ));
    seeds
}

fn client_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "hello",
            ClientMessage::Hello {
                version: 0,
                width: 1280,
                height: 800,
                codecs: 1,
            }
            .encode(),
        ),
        ("frame-ack", ClientMessage::FrameAck { seq: 42 }.encode()),
        (
            "key",
            ClientMessage::Key {
                down: true,
                keysym: 0x61,
                scancode: 0x1e,
            }
            .encode(),
        ),
        (
            "key-extended",
            ClientMessage::Key {
                down: false,
                keysym: 0xff51,
                scancode: 0xe04b,
            }
            .encode(),
        ),
        (
            "pointer",
            ClientMessage::Pointer {
                x: 100,
                y: 200,
                buttons: 0b101,
            }
            .encode(),
        ),
        (
            "resize-request",
            ClientMessage::ResizeRequest {
                width: 1920,
                height: 1080,
            }
            .encode(),
        ),
        (
            "clipboard",
            ClientMessage::Clipboard {
                text: "copié €".into(),
            }
            .encode(),
        ),
        (
            "clipboard-empty",
            ClientMessage::Clipboard {
                text: String::new(),
            }
            .encode(),
        ),
        (
            "control-reply-granted",
            ClientMessage::ControlReply {
                id: 1,
                granted: true,
            }
            .encode(),
        ),
        (
            "control-reply-refused",
            ClientMessage::ControlReply {
                id: 0x0102_0304,
                granted: false,
            }
            .encode(),
        ),
        ("control-request", ClientMessage::ControlRequest.encode()),
        (
            "control-release",
            ClientMessage::ControlRelease { id: 1 }.encode(),
        ),
        (
            "cache-offer",
            ClientMessage::CacheOffer { tiles: 2048 }.encode(),
        ),
    ]
}

fn server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let rect = Rect {
        x: 8,
        y: 4,
        width: 6,
        height: 5,
    };
    let tile = |alpha| ServerMessage::Tile {
        rect,
        codec: TileCodec::Png,
        data: png(6, 5, alpha),
    };
    let mut seeds = vec![
        (
            "hello",
            ServerMessage::Hello {
                version: 0,
                width: 40,
                height: 30,
                codecs: 1,
                max_in_flight: 2,
                name: "Bureau".into(),
            }
            .encode(),
        ),
        ("tile-rgb", tile(false).encode()),
        ("tile-rgba", tile(true).encode()),
        (
            "fill",
            ServerMessage::Fill {
                rect,
                rgb: [10, 20, 30],
            }
            .encode(),
        ),
        (
            "copy",
            ServerMessage::Copy {
                src_x: 0,
                src_y: 0,
                dst: rect,
            }
            .encode(),
        ),
        (
            "copy-overlap",
            ServerMessage::Copy {
                src_x: 2,
                src_y: 1,
                dst: Rect {
                    x: 0,
                    y: 0,
                    width: 40,
                    height: 30,
                },
            }
            .encode(),
        ),
        (
            "cursor",
            ServerMessage::Cursor {
                hot_x: 1,
                hot_y: 2,
                width: 6,
                height: 5,
                png: png(6, 5, true),
            }
            .encode(),
        ),
        (
            "cursor-hidden",
            ServerMessage::Cursor {
                hot_x: 0,
                hot_y: 0,
                width: 0,
                height: 0,
                png: vec![],
            }
            .encode(),
        ),
        (
            "resize",
            ServerMessage::Resize {
                width: 100,
                height: 80,
            }
            .encode(),
        ),
        ("end-frame", ServerMessage::EndFrame { seq: 7 }.encode()),
        (
            "notice",
            ServerMessage::Notice {
                level: NoticeLevel::Error,
                code: "session.ended".into(),
                detail: "réseau".into(),
            }
            .encode(),
        ),
        (
            "clipboard",
            ServerMessage::Clipboard {
                text: "texte".into(),
            }
            .encode(),
        ),
        (
            "message",
            ServerMessage::Message {
                from: "Aïcha (assistance)".into(),
                text: "Je redémarre votre session à midi.".into(),
            }
            .encode(),
        ),
        (
            "message-longest",
            ServerMessage::Message {
                from: "é".repeat(MAX_NAME),
                text: "€".repeat(MAX_MESSAGE_TEXT),
            }
            .encode(),
        ),
        (
            "control-request",
            ServerMessage::ControlRequest {
                id: 1,
                from: "Zoé".into(),
            }
            .encode(),
        ),
        (
            "control-state-pending",
            ServerMessage::ControlState {
                id: 1,
                state: control_state::PENDING,
            }
            .encode(),
        ),
        (
            "control-state-granted",
            ServerMessage::ControlState {
                id: 1,
                state: control_state::GRANTED,
            }
            .encode(),
        ),
        (
            "control-state-refused",
            ServerMessage::ControlState {
                id: 2,
                state: control_state::REFUSED,
            }
            .encode(),
        ),
        (
            "control-state-ended",
            ServerMessage::ControlState {
                id: 1,
                state: control_state::ENDED,
            }
            .encode(),
        ),
        (
            "view-mode",
            ServerMessage::ViewMode {
                read_only: true,
                shadow_of: "Jérôme Martin".into(),
            }
            .encode(),
        ),
        (
            "cache-agreed",
            ServerMessage::CacheAgreed { tiles: 4 }.encode(),
        ),
        (
            "cache-store",
            ServerMessage::CacheStore {
                slot: 2,
                rect,
                codec: TileCodec::Png,
                data: png(6, 5, false),
            }
            .encode(),
        ),
        // Slot 1 of the oracle's cache canvas holds a 3x2 tile.
        (
            "cache-draw",
            ServerMessage::CacheDraw { slot: 1, x: 20, y: 7 }.encode(),
        ),
    ];
    // A real stream's IDR (which opens it on the oracle's video canvas) and its next picture.
    let videos = bascule_fuzzing::oracles::video_samples();
    seeds.push(("video-key", videos[0].clone()));
    seeds.push(("video-delta", videos[1].clone()));
    seeds
}

fn write(dir: &Path, seeds: Vec<(&str, Vec<u8>)>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

/// Every RFB seed must be a *valid* session (the fuzzer mutates from there), except the ones
/// that are about errors.
fn check_rfb(seeds: &[(&str, Vec<u8>)]) {
    for (name, bytes) in seeds {
        let handshake = name.starts_with("handshake");
        let config = bascule_rfb::Config {
            password: Some("fuzzpass".into()),
            ..Default::default()
        };
        let mut client = bascule_rfb::Client::new(config);
        if !handshake {
            client
                .handle_input(&handshake_none(FB_WIDTH, FB_HEIGHT, "fuzz"))
                .unwrap();
        }
        let result = client.handle_input(bytes);
        let mut events = Vec::new();
        while let Some(event) = client.poll_event() {
            events.push(event);
        }
        let expect_error = name.contains("failed") || name.contains("refused");
        assert_eq!(result.is_err(), expect_error, "seed {name}: {result:?}");
        assert!(
            expect_error || events.len() > usize::from(handshake),
            "seed {name}: no event"
        );
        let pixels = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    bascule_rfb::Event::Pixels { .. } | bascule_rfb::Event::Fill { .. }
                )
            })
            .count();
        println!(
            "  {name}: {} bytes, {} events ({pixels} pixels/fill)",
            bytes.len(),
            events.len()
        );
    }
}

fn main() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let rfb = rfb_seeds();
    check_rfb(&rfb);
    write(&corpus.join("rfb_server_stream"), rfb);
    write(&corpus.join("client_message"), client_seeds());
    write(&corpus.join("server_message"), server_seeds());
}
