#![allow(clippy::unwrap_used)]

use crate::oracles::{
    cache_client_round_trip, cache_server_round_trip, client_message, helpdesk_client_round_trip,
    helpdesk_server_round_trip, rfb_after_handshake, rfb_from_start, rfb_server_stream,
    server_message,
};
use crate::wire::*;
use bascule_proto::{
    ClientMessage, MAX_CACHE_TILES, MAX_MESSAGE_TEXT, MAX_NAME, NoticeLevel, Rect, ServerMessage,
    TileCodec, control_state,
};

fn raw_rect(x: u16, y: u16, w: u16, h: u16) -> Vec<u8> {
    let mut v = rect(x, y, w, h, enc::RAW);
    v.extend((0..usize::from(w) * usize::from(h) * 4).map(|i| (i * 7) as u8));
    v
}

#[test]
fn rfb_valid_updates() {
    let mut stream = framebuffer_update(&[raw_rect(0, 0, 64, 48), raw_rect(10, 10, 3, 2)]);
    let mut copy = rect(0, 0, 16, 16, enc::COPY_RECT);
    copy.extend_from_slice(&[0, 8, 0, 8]);
    stream.extend(framebuffer_update(&[copy]));
    let mut fill = rect(1, 1, 5, 5, enc::TIGHT);
    fill.extend_from_slice(&[0x80, 1, 2, 3]);
    stream.extend(framebuffer_update(&[
        fill,
        rect(0, 0, 32, 32, enc::DESKTOP_SIZE),
    ]));
    stream.extend(bell());
    stream.extend(server_cut_text(b"caf\xe9"));
    stream.extend(colour_map(0, 2));
    rfb_server_stream(&stream);
    // Every prefix (a session cut anywhere) too.
    for cut in (0..stream.len()).step_by(97) {
        rfb_server_stream(&stream[..cut]);
    }
}

#[test]
fn rfb_errors_are_sticky() {
    // Unknown message type, unknown encoding, rectangle outside the framebuffer.
    rfb_after_handshake(&[9]);
    rfb_after_handshake(&framebuffer_update(&[rect(0, 0, 1, 1, 12345)]));
    rfb_after_handshake(&framebuffer_update(&[raw_rect(60, 0, 8, 1)]));
    rfb_after_handshake(&[0xff; 64]);
    rfb_after_handshake(&[]);
}

#[test]
fn rfb_handshakes() {
    let mut with_auth = b"RFB 003.008\n".to_vec();
    with_auth.extend_from_slice(&[2, 2, 1]);
    with_auth.extend_from_slice(&[7; 16]);
    with_auth.extend_from_slice(&0u32.to_be_bytes());
    with_auth.extend(server_init(16, 16, "bureau"));
    with_auth.extend(framebuffer_update(&[raw_rect(0, 0, 16, 16)]));
    rfb_from_start(&with_auth);

    let mut v33 = b"RFB 003.003\n".to_vec();
    v33.extend_from_slice(&1u32.to_be_bytes());
    v33.extend(server_init(8, 8, ""));
    rfb_from_start(&v33);

    let mut refused = b"RFB 003.008\n".to_vec();
    refused.extend_from_slice(&[0, 0, 0, 0, 4]);
    refused.extend_from_slice(b"nope");
    rfb_from_start(&refused);

    rfb_from_start(b"HTTP/1.1 200 OK\r\n");
    rfb_from_start(&handshake_none(FB_WIDTH, FB_HEIGHT, "x"));
    rfb_from_start(&[]);
}

#[test]
fn rfb_byte_by_byte_and_odd_chunks() {
    // Inputs whose split hash differs, so both the 1-byte and the 3-cut paths are taken.
    for seed in 0..32u8 {
        let mut stream = vec![2, 2, seed];
        stream.extend(framebuffer_update(&[raw_rect(0, 0, 4, 4)]));
        rfb_server_stream(&stream);
    }
}

#[test]
fn client_messages() {
    let samples = [
        ClientMessage::Hello {
            version: 0,
            width: 800,
            height: 600,
            codecs: 1,
        },
        ClientMessage::FrameAck { seq: 7 },
        ClientMessage::Key {
            down: true,
            keysym: 0x20ac,
            scancode: 0xe01d,
        },
        ClientMessage::Pointer {
            x: 1,
            y: 2,
            buttons: 3,
        },
        ClientMessage::ResizeRequest {
            width: 1920,
            height: 1080,
        },
        ClientMessage::Clipboard {
            text: "çà".into()
        },
        ClientMessage::ControlReply {
            id: 3,
            granted: true,
        },
        ClientMessage::ControlReply {
            id: u32::MAX,
            granted: false,
        },
        ClientMessage::ControlRequest,
        ClientMessage::ControlRelease { id: 3 },
        ClientMessage::CacheOffer { tiles: 2048 },
        ClientMessage::CacheOffer {
            tiles: MAX_CACHE_TILES,
        },
    ];
    for message in samples {
        let bytes = message.encode();
        client_message(&bytes);
        for cut in 0..bytes.len() {
            client_message(&bytes[..cut]);
        }
    }
    client_message(&[]);
    client_message(&[0x86, 0xff]);
    client_message(&vec![0x86; bascule_proto::MAX_CLIENT_MESSAGE + 1]);
    client_message(&[0x87, 1, 0, 0, 0, 2]);
    client_message(&[0x88, b'{', b'}']);
    client_message(&[0x89, 1]);
    // A cache offer beyond the bound, or with a trailing byte.
    client_message(&[0x8a, 1, 0, 1, 0]);
    client_message(&[0x8a, 0xff, 0xff, 0xff, 0xff]);
    client_message(&[0x8a, 1, 0, 0, 0, 0]);
}

#[test]
fn server_messages() {
    let rect = Rect {
        x: 60,
        y: 40,
        width: 4,
        height: 8,
    };
    let samples = [
        ServerMessage::Hello {
            version: 0,
            width: 32,
            height: 16,
            codecs: 1,
            max_in_flight: 2,
            name: "é".into(),
        },
        ServerMessage::Hello {
            version: 0,
            width: 60000,
            height: 60000,
            codecs: 1,
            max_in_flight: 2,
            name: "".into(),
        },
        ServerMessage::Tile {
            rect,
            codec: TileCodec::Png,
            data: vec![0x89, b'P', b'N', b'G'],
        },
        ServerMessage::Fill {
            rect,
            rgb: [1, 2, 3],
        },
        ServerMessage::Fill {
            rect: Rect { x: 61, ..rect },
            rgb: [1, 2, 3],
        },
        ServerMessage::Copy {
            src_x: 0,
            src_y: 0,
            dst: rect,
        },
        ServerMessage::Copy {
            src_x: 4,
            src_y: 2,
            dst: Rect {
                x: 0,
                y: 0,
                width: 40,
                height: 30,
            },
        },
        ServerMessage::Copy {
            src_x: 0,
            src_y: 0,
            dst: Rect {
                x: 3,
                y: 5,
                width: 40,
                height: 30,
            },
        },
        ServerMessage::Cursor {
            hot_x: 0,
            hot_y: 0,
            width: 0,
            height: 0,
            png: vec![],
        },
        ServerMessage::Resize {
            width: 10,
            height: 10,
        },
        ServerMessage::EndFrame { seq: 9 },
        ServerMessage::Notice {
            level: NoticeLevel::Warning,
            code: "a.b".into(),
            detail: "c".into(),
        },
        ServerMessage::Clipboard { text: "€".into() },
        ServerMessage::Message {
            from: "Aïcha".into(),
            text: "Redémarrage à midi".into(),
        },
        ServerMessage::Message {
            from: "n".repeat(MAX_NAME),
            text: "€".repeat(MAX_MESSAGE_TEXT),
        },
        ServerMessage::ControlRequest {
            id: 1,
            from: "Zoé".into(),
        },
        ServerMessage::ControlState {
            id: 1,
            state: control_state::GRANTED,
        },
        ServerMessage::ControlState {
            id: 1,
            state: control_state::ENDED,
        },
        ServerMessage::ViewMode {
            read_only: true,
            shadow_of: "Jérôme".into(),
        },
        ServerMessage::CacheAgreed { tiles: 4 },
        ServerMessage::CacheAgreed { tiles: 5 },
        ServerMessage::CacheAgreed {
            tiles: MAX_CACHE_TILES,
        },
        // Kept in slot 0, in slot 9 (beyond the cache canvas's 4), outside, and not a PNG.
        ServerMessage::CacheStore {
            slot: 0,
            rect,
            codec: TileCodec::Png,
            data: sample_png(4, 8),
        },
        ServerMessage::CacheStore {
            slot: 9,
            rect,
            codec: TileCodec::Png,
            data: sample_png(4, 8),
        },
        ServerMessage::CacheStore {
            slot: 0,
            rect: Rect { x: 61, ..rect },
            codec: TileCodec::Png,
            data: sample_png(4, 8),
        },
        ServerMessage::CacheStore {
            slot: 3,
            rect,
            codec: TileCodec::Png,
            data: vec![0x89, b'P', b'N', b'G'],
        },
        // Slot 1 holds a 3x2 tile on the cache canvas; slot 0 is empty there.
        ServerMessage::CacheDraw { slot: 1, x: 0, y: 0 },
        ServerMessage::CacheDraw { slot: 1, x: 61, y: 46 },
        ServerMessage::CacheDraw { slot: 1, x: 62, y: 46 },
        ServerMessage::CacheDraw { slot: 0, x: 0, y: 0 },
        ServerMessage::CacheDraw {
            slot: MAX_CACHE_TILES - 1,
            x: 0,
            y: 0,
        },
    ];
    for message in samples {
        let bytes = message.encode();
        server_message(&bytes);
        for cut in 0..bytes.len().min(40) {
            server_message(&bytes[..cut]);
        }
    }
    server_message(&[0x02, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    server_message(&[0x42]);
    // Refused cache messages: a slot, a count or a tile size beyond the bounds.
    server_message(&[0x10, 0, 0, 1, 0, 0, 0, 0, 0]);
    server_message(&[0x0e, 1, 0, 1, 0]);
    server_message(&[0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 65, 0, 1, 0, 1]);
    server_message(&[0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
    // Refused helpdesk messages: a state out of range, a text one character too long.
    server_message(&[0x0c, 1, 0, 0, 0, 4]);
    let mut long = vec![0x0a, 0, 0];
    long.extend_from_slice(&2001u16.to_le_bytes());
    long.extend_from_slice(&[b'a'; 2001]);
    assert!(ServerMessage::decode(&long).is_err());
    server_message(&long);
}

/// A `width` x `height` RGB PNG of some colours.
fn sample_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let rgb: Vec<u8> = (0..width * height * 3).map(|i| (i * 37) as u8).collect();
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&rgb)
        .unwrap();
    out
}

#[test]
fn cache_value_round_trips() {
    // Counts and slots at, below and above the bounds; tile sizes of 0, 1 to 64, and beyond.
    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0xff; 16]];
    for byte in [0u8, 1, 2, 3, 4, 0x80, 0x81, 0x82, 0x83, 0x84] {
        for (width, height) in [(0, 5), (1, 1), (64, 64), (65, 3), (79, 79)] {
            inputs.push(vec![2, 0, 0, 0, byte, width, height, 60, 0, 40, 0, b'x']);
        }
    }
    for data in &inputs {
        cache_server_round_trip(data);
        cache_client_round_trip(data);
        server_message(data);
        client_message(data);
    }
}

#[test]
fn helpdesk_value_round_trips() {
    // Short and empty inputs, multi-byte and invalid UTF-8, texts past their limits.
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![1, 2, 3],
        [&[7, 0, 0, 0, 0xff, 200, 0xd0, 0x07][..], "é€😀".as_bytes()].concat(),
        [&[1, 0, 0, 0, 3, 129, 0xd1, 0x07][..], b"\xff\xfe abc"].concat(),
    ];
    for byte in 0..8u8 {
        inputs.push(vec![9, 9, 9, 9, byte, 128, 0xff, 0xff, b'x']);
    }
    for data in &inputs {
        helpdesk_server_round_trip(data);
        helpdesk_client_round_trip(data);
        server_message(data);
        client_message(data);
    }
}


/// Real `Glyphs` messages, as the display engine writes them for a line of text, pass the
/// server-message oracle (accepted on a canvas that announced glyphs), and every truncation and
/// byte flip of them is either accepted or refused whole.
#[test]
fn glyph_messages_pass_the_oracle_whole_or_refused_whole() {
    use bascule_display::{Display, Update};
    use bascule_proto::{CODEC_GLYPHS, CODEC_PNG, Rect, ServerMessage};
    let (w, h) = (crate::wire::FB_WIDTH, crate::wire::FB_HEIGHT);
    let mut display = Display::new(w, h);
    let viewer = display.add_viewer(1);
    display.set_codecs(viewer, CODEC_PNG | CODEC_GLYPHS);
    // White, with dark "letters": 3x5 blocks two pixels apart on two lines.
    let rgba: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|i| {
            let (x, y) = (i % usize::from(w), i / usize::from(w));
            let ink = (y % 12 < 5) && (x % 5 < 3) && ((x / 5 + y / 12) % 3 != 0);
            if ink { [20, 20, 20, 255] } else { [255, 255, 255, 255] }
        })
        .collect();
    display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: w, height: h }, rgba }).expect("pixels");
    let plan = display.take_frame(viewer).expect("a frame");
    let glyphs: Vec<Vec<u8>> =
        plan.encode().into_iter().filter(|p| matches!(ServerMessage::decode(p), Ok(ServerMessage::Glyphs { .. }))).collect();
    assert!(!glyphs.is_empty(), "the frame has glyphs");
    // On a canvas that announced glyphs, the frame's messages are accepted.
    let mut canvas = bascule_display::Canvas::new(w, h);
    let codecs = canvas.announce_codecs(CODEC_PNG | CODEC_GLYPHS);
    canvas.apply(&ServerMessage::Hello { version: 0, width: w, height: h, codecs, max_in_flight: 1, name: String::new() }).expect("hello");
    for bytes in &glyphs {
        canvas.apply(&ServerMessage::decode(bytes).expect("decodes")).expect("a real Glyphs message is accepted");
    }
    assert!(canvas.glyph_stores() > 0);
    for bytes in &glyphs {
        crate::oracles::server_message(bytes);
        for cut in 0..bytes.len() {
            crate::oracles::server_message(&bytes[..cut]);
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x5a;
            crate::oracles::server_message(&flipped);
        }
    }
}

/// Real `Video` messages, as the display engine writes them for a moving picture (the IDR that
/// opens the stream, then pictures of it), pass the server-message oracle, and so do every
/// truncation and byte flip of the first ones: refused without drawing, or accepted whole.
#[test]
fn video_messages_pass_the_oracle_whole_or_refused_whole() {
    use bascule_proto::{CODEC_H264, CODEC_PNG, ServerMessage, VIDEO_KEY};
    let videos = crate::oracles::video_samples();
    assert!(videos.len() >= 3, "a stream was opened and went on: {}", videos.len());
    let key = ServerMessage::decode(&videos[0]).expect("decodes");
    assert!(matches!(key, ServerMessage::Video { flags: VIDEO_KEY, .. }), "{key:?}");
    // A canvas that announced H.264 draws them all.
    let (w, h) = crate::oracles::VIDEO_CANVAS;
    let mut canvas = bascule_display::Canvas::new(w, h);
    let codecs = canvas.announce_codecs(CODEC_PNG | CODEC_H264);
    canvas.apply(&ServerMessage::Hello { version: 0, width: w, height: h, codecs, max_in_flight: 1, name: String::new() }).expect("hello");
    for bytes in &videos {
        canvas.apply(&ServerMessage::decode(bytes).expect("decodes")).expect("a real Video message is accepted");
    }
    assert_eq!(canvas.video_frames(), videos.len() as u64);
    for bytes in videos.iter().take(2) {
        crate::oracles::server_message(bytes);
        // The header, SPS and PPS byte by byte, then every 29th byte (each try decodes).
        let sampled = |i: &usize| *i < 96 || i.is_multiple_of(29);
        for cut in (0..bytes.len()).filter(sampled) {
            crate::oracles::server_message(&bytes[..cut]);
        }
        for i in (0..bytes.len()).filter(sampled) {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x5a;
            crate::oracles::server_message(&flipped);
        }
    }
}
