//! EGFX (MS-RDPEGFX graphics pipeline): the capability sets per [`Egfx`] mode, and the AVC420
//! pass-through.
//!
//! - [`Egfx::On`] registers IronRDP's own `GraphicsPipelineClient` without an H.264 decoder and
//!   with capability sets that disable AVC, so the host uses planar, ClearCodec, RemoteFX
//!   (progressive) or uncompressed. `ActiveStage` composites those into the session image.
//! - [`Egfx::Avc420PassThrough`] registers [`PassThroughChannel`]: the same client, given a
//!   [`PassThroughDecoder`] so that it advertises AVC420, wrapped by a channel processor that
//!   reads every AVC420 `WireToSurface1` on its way in and queues it as an [`Avc420Frame`]
//!   (the H.264 bytes as sent, plus where they go). The H.264 is never decoded here.
//!
//! Why a wrapper: IronRDP's `H264Decoder::decode` only gets the H.264 bytes, not the surface,
//! the destination rectangle, the region rectangles or the frame id. The wrapper gets those by
//! reading the channel data itself (its own ZGFX decompressor, fed the same stream, so its
//! history stays identical), then hands the unchanged data to the client.

use std::collections::BTreeMap;

use ironrdp_dvc::{DvcClientProcessor, DvcMessage, DvcProcessor};
use ironrdp_egfx::client::{GraphicsPipelineClient, GraphicsPipelineHandler};
use ironrdp_egfx::decode::{DecodedFrame, DecoderError, DecoderResult, H264Decoder};
use ironrdp_egfx::pdu::{
    Avc420BitmapStream, CapabilitiesV8Flags, CapabilitiesV10Flags, CapabilitiesV81Flags, CapabilitiesV103Flags,
    CapabilitiesV104Flags, CapabilitiesV107Flags, CapabilitySet, Codec1Type, GfxPdu,
};
use ironrdp_graphics::zgfx;
use ironrdp_pdu::{Decode as _, PduResult, ReadCursor};

use crate::Egfx;

/// Capability sets advertised for `mode` (empty for [`Egfx::Off`]).
///
/// - `On`: versions 10.7 down to 10 with `AVC_DISABLED` (10.1 is left out: it cannot disable
///   AVC), then 8.1 without `AVC420_ENABLED`, then 8. No set allows AVC420 or AVC444.
/// - `Avc420PassThrough`: 8.1 with `AVC420_ENABLED`, then 8. Every version-10 set would also
///   allow AVC444 (4:4:4 as two 4:2:0 streams that must be combined after decoding), and the
///   host picks the highest version advertised, so they are left out on purpose.
pub(crate) fn capabilities(mode: Egfx) -> Vec<CapabilitySet> {
    let v8 = CapabilitySet::V8 {
        flags: CapabilitiesV8Flags::SMALL_CACHE,
    };
    match mode {
        Egfx::Off => Vec::new(),
        Egfx::On => vec![
            CapabilitySet::V10_7 {
                flags: CapabilitiesV107Flags::SMALL_CACHE | CapabilitiesV107Flags::AVC_DISABLED,
            },
            CapabilitySet::V10_6 {
                flags: CapabilitiesV104Flags::SMALL_CACHE | CapabilitiesV104Flags::AVC_DISABLED,
            },
            CapabilitySet::V10_5 {
                flags: CapabilitiesV104Flags::SMALL_CACHE | CapabilitiesV104Flags::AVC_DISABLED,
            },
            CapabilitySet::V10_4 {
                flags: CapabilitiesV104Flags::SMALL_CACHE | CapabilitiesV104Flags::AVC_DISABLED,
            },
            CapabilitySet::V10_3 {
                flags: CapabilitiesV103Flags::AVC_DISABLED,
            },
            CapabilitySet::V10_2 {
                flags: CapabilitiesV10Flags::SMALL_CACHE | CapabilitiesV10Flags::AVC_DISABLED,
            },
            CapabilitySet::V10 {
                flags: CapabilitiesV10Flags::SMALL_CACHE | CapabilitiesV10Flags::AVC_DISABLED,
            },
            CapabilitySet::V8_1 {
                flags: CapabilitiesV81Flags::SMALL_CACHE,
            },
            v8,
        ],
        Egfx::Avc420PassThrough => vec![
            CapabilitySet::V8_1 {
                flags: CapabilitiesV81Flags::SMALL_CACHE | CapabilitiesV81Flags::AVC420_ENABLED,
            },
            v8,
        ],
    }
}

/// The pipeline handler: it only chooses the capability sets; pixels go through IronRDP's
/// compositor, which `ActiveStage` (or [`crate::session`]) drains into the session image.
struct Handler {
    caps: Vec<CapabilitySet>,
}

impl GraphicsPipelineHandler for Handler {
    fn capabilities(&self) -> Vec<CapabilitySet> {
        self.caps.clone()
    }

    fn on_capabilities_confirmed(&mut self, caps: &CapabilitySet) {
        tracing::info!(version = format_args!("{:#x}", caps.version().0), ?caps, "EGFX capabilities confirmed");
    }

    fn on_unhandled_pdu(&mut self, pdu: &GfxPdu) {
        // AVC444 lands here (it is never advertised, so a host should not send it).
        tracing::debug!(?pdu, "EGFX PDU not handled");
    }
}

/// The EGFX client for [`Egfx::On`]: no H.264 decoder, AVC disabled in every advertised set.
pub(crate) fn pipeline_client() -> GraphicsPipelineClient {
    GraphicsPipelineClient::new(
        Box::new(Handler {
            caps: capabilities(Egfx::On),
        }),
        None,
    )
}

/// An `H264Decoder` that decodes nothing. Registering it makes IronRDP advertise the AVC420
/// capability sets (it filters them out when there is no decoder); the payload bytes are
/// forwarded by [`PassThroughChannel`], which also sees their rectangles and frame id.
///
/// `decode` returns an error on purpose: IronRDP then counts the update as dropped (and logs a
/// warning for the 1st and every 64th), paints nothing, and carries on. The session does not
/// fail, and frames are still acknowledged. It never returns YUV planes, so IronRDP never
/// advertises AVC444 with it.
#[derive(Debug, Default)]
pub(crate) struct PassThroughDecoder {
    passed: u64,
}

impl H264Decoder for PassThroughDecoder {
    fn decode(&mut self, data: &[u8]) -> DecoderResult<DecodedFrame> {
        self.passed += 1;
        tracing::trace!(bytes = data.len(), passed = self.passed, "AVC420 payload passed through");
        Err(DecoderError::msg(
            "AVC420 is passed through to the browser and not decoded on the gateway (expected, not an error)",
        ))
    }
}

/// One AVC420 `WireToSurface1`, as it arrived. See [`crate::RdpEvent::Avc420`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Avc420Frame {
    pub(crate) frame_id: Option<u32>,
    pub(crate) surface_id: u16,
    pub(crate) output_origin: Option<(u32, u32)>,
    /// Destination rectangle in surface coordinates: left, top, right, bottom (exclusive).
    pub(crate) destination: (u16, u16, u16, u16),
    pub(crate) regions: Vec<(u16, u16, u16, u16)>,
    pub(crate) quality: Vec<(u8, bool, u8)>,
    pub(crate) data: Vec<u8>,
}

impl From<Avc420Frame> for crate::RdpEvent {
    fn from(f: Avc420Frame) -> Self {
        let (left, top, right, bottom) = f.destination;
        crate::RdpEvent::Avc420 {
            frame_id: f.frame_id,
            surface_id: f.surface_id,
            output_origin: f.output_origin,
            surface_x: left,
            surface_y: top,
            width: right.saturating_sub(left),
            height: bottom.saturating_sub(top),
            regions: f.regions,
            quality: f.quality,
            data: f.data,
        }
    }
}

/// The EGFX channel for [`Egfx::Avc420PassThrough`]: IronRDP's client (with
/// [`PassThroughDecoder`]) plus a reader that extracts the AVC420 payloads.
pub(crate) struct PassThroughChannel {
    client: GraphicsPipelineClient,
    zgfx: zgfx::Decompressor,
    buf: Vec<u8>,
    /// The reader could not follow the stream (bad ZGFX); it stops, the client decides.
    lost: bool,
    frame_id: Option<u32>,
    origins: BTreeMap<u16, (u32, u32)>,
    frames: Vec<Avc420Frame>,
}

impl PassThroughChannel {
    pub(crate) fn new() -> Self {
        let handler = Handler {
            caps: capabilities(Egfx::Avc420PassThrough),
        };
        Self {
            client: GraphicsPipelineClient::new(Box::new(handler), Some(Box::new(PassThroughDecoder::default()))),
            zgfx: zgfx::Decompressor::new(),
            buf: Vec::new(),
            lost: false,
            frame_id: None,
            origins: BTreeMap::new(),
            frames: Vec::new(),
        }
    }

    pub(crate) fn client(&self) -> &GraphicsPipelineClient {
        &self.client
    }

    pub(crate) fn client_mut(&mut self) -> &mut GraphicsPipelineClient {
        &mut self.client
    }

    /// The AVC420 payloads read since the last call, in arrival order.
    pub(crate) fn take_frames(&mut self) -> Vec<Avc420Frame> {
        std::mem::take(&mut self.frames)
    }

    /// Reads one channel message (ZGFX segment(s)) and returns the AVC420 updates it carries.
    fn read(&mut self, payload: &[u8]) -> Vec<Avc420Frame> {
        let mut found = Vec::new();
        if self.lost {
            return found;
        }
        self.buf.clear();
        if let Err(e) = self.zgfx.decompress(payload, &mut self.buf) {
            tracing::warn!(error = ?e, "EGFX pass-through: cannot decompress; no more AVC420 will be forwarded");
            self.lost = true;
            return found;
        }
        let mut cursor = ReadCursor::new(&self.buf);
        while !cursor.is_empty() {
            let pdu = match GfxPdu::decode(&mut cursor) {
                Ok(pdu) => pdu,
                Err(e) => {
                    tracing::debug!(error = %e, "EGFX pass-through: undecodable PDU (the client reports it)");
                    break;
                }
            };
            match pdu {
                GfxPdu::StartFrame(p) => self.frame_id = Some(p.frame_id),
                GfxPdu::EndFrame(_) => self.frame_id = None,
                GfxPdu::ResetGraphics(_) => {
                    self.origins.clear();
                    self.frame_id = None;
                }
                GfxPdu::CreateSurface(p) => {
                    self.origins.remove(&p.surface_id);
                }
                GfxPdu::DeleteSurface(p) => {
                    self.origins.remove(&p.surface_id);
                }
                GfxPdu::MapSurfaceToOutput(p) => {
                    self.origins.insert(p.surface_id, (p.output_origin_x, p.output_origin_y));
                }
                GfxPdu::MapSurfaceToScaledOutput(p) => {
                    // Scaling is not described by the event; the origin still is.
                    self.origins.insert(p.surface_id, (p.output_origin_x, p.output_origin_y));
                }
                GfxPdu::MapSurfaceToWindow(p) => {
                    self.origins.remove(&p.surface_id);
                }
                GfxPdu::MapSurfaceToScaledWindow(p) => {
                    self.origins.remove(&p.surface_id);
                }
                GfxPdu::WireToSurface1(w) if w.codec_id == Codec1Type::Avc420 => {
                    let mut c = ReadCursor::new(&w.bitmap_data);
                    match Avc420BitmapStream::decode(&mut c) {
                        Ok(stream) => {
                            let d = &w.destination_rectangle;
                            found.push(Avc420Frame {
                                frame_id: self.frame_id,
                                surface_id: w.surface_id,
                                output_origin: self.origins.get(&w.surface_id).copied(),
                                destination: (d.left, d.top, d.right, d.bottom),
                                regions: stream
                                    .rectangles
                                    .iter()
                                    .map(|r| (r.left, r.top, r.right, r.bottom))
                                    .collect(),
                                quality: stream
                                    .quant_qual_vals
                                    .iter()
                                    .map(|q| (q.quantization_parameter, q.progressive, q.quality))
                                    .collect(),
                                data: stream.data.to_vec(),
                            });
                        }
                        Err(e) => tracing::debug!(error = %e, "EGFX pass-through: invalid AVC420 metablock, skipped"),
                    }
                }
                _ => {}
            }
        }
        found
    }
}

ironrdp_pdu::impl_as_any!(PassThroughChannel);

impl DvcProcessor for PassThroughChannel {
    fn channel_name(&self) -> &str {
        ironrdp_egfx::CHANNEL_NAME
    }

    fn start(&mut self, channel_id: u32) -> PduResult<Vec<DvcMessage>> {
        // A (re)opened channel starts a new ZGFX history.
        self.zgfx = zgfx::Decompressor::new();
        self.lost = false;
        self.frame_id = None;
        self.origins.clear();
        self.client.start(channel_id)
    }

    fn process(&mut self, channel_id: u32, payload: &[u8]) -> PduResult<Vec<DvcMessage>> {
        let found = self.read(payload);
        let replies = self.client.process(channel_id, payload)?;
        // Only what the client accepted (it ignores graphics before the capability confirm).
        if self.client.is_active() {
            self.frames.extend(found);
        }
        Ok(replies)
    }

    fn close(&mut self, channel_id: u32) {
        self.client.close(channel_id);
    }
}

impl DvcClientProcessor for PassThroughChannel {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ironrdp_egfx::pdu::{
        CapabilitiesAdvertisePdu, CapabilitiesConfirmPdu, CreateSurfacePdu, EndFramePdu, MapSurfaceToOutputPdu,
        PixelFormat, QuantQuality, ResetGraphicsPdu, StartFramePdu, Timestamp, WireToSurface1Pdu,
    };
    use ironrdp_pdu::geometry::ExclusiveRectangle;
    use ironrdp_pdu::{encode_vec, Decode as _};

    use super::*;
    use crate::RdpEvent;

    /// Whether a capability set lets the host send AVC420 (or AVC444).
    fn allows_avc(cap: &CapabilitySet) -> bool {
        match cap {
            CapabilitySet::V8 { .. } => false,
            CapabilitySet::V8_1 { flags } => flags.contains(CapabilitiesV81Flags::AVC420_ENABLED),
            CapabilitySet::V10 { flags } | CapabilitySet::V10_2 { flags } => {
                !flags.contains(CapabilitiesV10Flags::AVC_DISABLED)
            }
            CapabilitySet::V10_1 => true,
            CapabilitySet::V10_3 { flags } => !flags.contains(CapabilitiesV103Flags::AVC_DISABLED),
            CapabilitySet::V10_4 { flags }
            | CapabilitySet::V10_5 { flags }
            | CapabilitySet::V10_6 { flags }
            | CapabilitySet::V10_6Err { flags } => !flags.contains(CapabilitiesV104Flags::AVC_DISABLED),
            CapabilitySet::V10_7 { flags } => !flags.contains(CapabilitiesV107Flags::AVC_DISABLED),
        }
    }

    /// What a processor sends when the channel opens, decoded from the wire bytes.
    fn advertised(p: &mut dyn DvcProcessor) -> Vec<CapabilitySet> {
        let msgs = p.start(7).unwrap();
        assert_eq!(msgs.len(), 1);
        let bytes = encode_vec(msgs[0].as_ref()).unwrap();
        let pdu = GfxPdu::decode(&mut ReadCursor::new(&bytes)).unwrap();
        let GfxPdu::CapabilitiesAdvertise(CapabilitiesAdvertisePdu(raw)) = pdu else {
            panic!("not a CapabilitiesAdvertise: {pdu:?}")
        };
        raw.iter().map(|r| r.parsed().unwrap().unwrap()).collect()
    }

    /// EGFX PDUs as a channel message: encoded, concatenated, one uncompressed ZGFX segment.
    fn message(pdus: &[GfxPdu]) -> Vec<u8> {
        let mut raw = Vec::new();
        for pdu in pdus {
            raw.extend(encode_vec(pdu).unwrap());
        }
        zgfx::wrap_uncompressed(&raw)
    }

    #[test]
    fn avc420_is_advertised_only_in_pass_through() {
        let on = advertised(&mut pipeline_client());
        assert!(!on.is_empty());
        assert!(on.iter().all(|c| !allows_avc(c)), "On advertises AVC: {on:?}");
        assert!(matches!(on[0], CapabilitySet::V10_7 { .. }), "{on:?}");

        let pass = advertised(&mut PassThroughChannel::new());
        assert!(pass.iter().any(allows_avc), "pass-through advertises no AVC: {pass:?}");
        // AVC420 only: no version-10 set (they imply AVC444 too).
        assert!(
            pass.iter()
                .all(|c| matches!(c, CapabilitySet::V8 { .. } | CapabilitySet::V8_1 { .. })),
            "{pass:?}"
        );
        assert!(pass.contains(&CapabilitySet::V8_1 {
            flags: CapabilitiesV81Flags::SMALL_CACHE | CapabilitiesV81Flags::AVC420_ENABLED
        }));

        assert!(capabilities(Egfx::Off).is_empty());
    }

    #[test]
    fn confirmed_sets_give_the_expected_codecs() {
        let mut on = pipeline_client();
        let _ = on.start(7).unwrap();
        let confirm = message(&[GfxPdu::CapabilitiesConfirm(CapabilitiesConfirmPdu::from_typed(
            &capabilities(Egfx::On)[0],
        ))]);
        on.process(7, &confirm).unwrap();
        assert!(on.is_active());
        assert!(!on.codec_capabilities().avc420 && !on.codec_capabilities().avc444);

        let mut pass = PassThroughChannel::new();
        let _ = pass.start(7).unwrap();
        let confirm = message(&[GfxPdu::CapabilitiesConfirm(CapabilitiesConfirmPdu::from_typed(
            &capabilities(Egfx::Avc420PassThrough)[0],
        ))]);
        pass.process(7, &confirm).unwrap();
        assert!(pass.client().is_active());
        assert!(pass.client().codec_capabilities().avc420);
        assert!(!pass.client().codec_capabilities().avc444);
    }

    fn avc420_stream(regions: &[(u16, u16, u16, u16)], quality: &[(u8, bool, u8)], h264: &[u8]) -> Vec<u8> {
        let stream = Avc420BitmapStream {
            rectangles: regions
                .iter()
                .map(|&(left, top, right, bottom)| ExclusiveRectangle { left, top, right, bottom })
                .collect(),
            quant_qual_vals: quality
                .iter()
                .map(|&(quantization_parameter, progressive, quality)| QuantQuality {
                    quantization_parameter,
                    progressive,
                    quality,
                })
                .collect(),
            data: h264,
        };
        encode_vec(&stream).unwrap()
    }

    fn wire(surface_id: u16, codec_id: Codec1Type, rect: (u16, u16, u16, u16), bitmap_data: Vec<u8>) -> GfxPdu {
        GfxPdu::WireToSurface1(WireToSurface1Pdu {
            surface_id,
            codec_id,
            pixel_format: PixelFormat::XRgb,
            destination_rectangle: ExclusiveRectangle {
                left: rect.0,
                top: rect.1,
                right: rect.2,
                bottom: rect.3,
            },
            bitmap_data,
        })
    }

    #[test]
    fn avc420_payloads_are_forwarded_verbatim() {
        // Fake H.264 (Annex B start codes + junk): never decoded, so it need not be valid.
        let h264_a: Vec<u8> = vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        let h264_b: Vec<u8> = vec![0, 0, 1, 0x41, 0x9a, 0x02, 0x03];
        let regions_a = [(16, 8, 80, 40), (100, 50, 164, 114)];
        let quality_a = [(22, false, 100), (30, true, 64)];

        let mut ch = PassThroughChannel::new();
        let _ = ch.start(3).unwrap();
        let setup = message(&[
            GfxPdu::CapabilitiesConfirm(CapabilitiesConfirmPdu::from_typed(
                &capabilities(Egfx::Avc420PassThrough)[0],
            )),
            GfxPdu::ResetGraphics(ResetGraphicsPdu {
                width: 1024,
                height: 768,
                monitors: Vec::new(),
            }),
            GfxPdu::CreateSurface(CreateSurfacePdu {
                surface_id: 5,
                width: 640,
                height: 480,
                pixel_format: PixelFormat::XRgb,
            }),
            GfxPdu::MapSurfaceToOutput(MapSurfaceToOutputPdu {
                surface_id: 5,
                output_origin_x: 200,
                output_origin_y: 100,
            }),
        ]);
        assert!(ch.process(3, &setup).unwrap().is_empty());
        assert!(ch.take_frames().is_empty());

        let ts = Timestamp {
            milliseconds: 1,
            seconds: 2,
            minutes: 3,
            hours: 4,
        };
        let frame = message(&[
            GfxPdu::StartFrame(StartFramePdu { timestamp: ts, frame_id: 41 }),
            wire(5, Codec1Type::Avc420, (16, 8, 164, 114), avc420_stream(&regions_a, &quality_a, &h264_a)),
            // Uncompressed 2x1 pixels (XRGB), composited by IronRDP, not forwarded.
            wire(5, Codec1Type::Uncompressed, (0, 0, 2, 1), vec![1, 2, 3, 0, 4, 5, 6, 0]),
            GfxPdu::EndFrame(EndFramePdu { frame_id: 41 }),
        ]);
        let replies = ch.process(3, &frame).unwrap();
        // The frame is acknowledged although its AVC420 was not decoded.
        assert_eq!(replies.len(), 1);
        let ack = GfxPdu::decode(&mut ReadCursor::new(&encode_vec(replies[0].as_ref()).unwrap())).unwrap();
        assert!(matches!(ack, GfxPdu::FrameAcknowledge(ref a) if a.frame_id == 41), "{ack:?}");

        // A second frame split over two channel messages, without region rectangles.
        let part1 = message(&[
            GfxPdu::StartFrame(StartFramePdu { timestamp: ts, frame_id: 42 }),
            wire(5, Codec1Type::Avc420, (0, 0, 640, 480), avc420_stream(&[], &[], &h264_b)),
        ]);
        let part2 = message(&[GfxPdu::EndFrame(EndFramePdu { frame_id: 42 })]);
        assert!(ch.process(3, &part1).unwrap().is_empty());
        assert_eq!(ch.process(3, &part2).unwrap().len(), 1);

        let events: Vec<RdpEvent> = ch.take_frames().into_iter().map(RdpEvent::from).collect();
        assert_eq!(
            events,
            vec![
                RdpEvent::Avc420 {
                    frame_id: Some(41),
                    surface_id: 5,
                    output_origin: Some((200, 100)),
                    surface_x: 16,
                    surface_y: 8,
                    width: 148,
                    height: 106,
                    regions: regions_a.to_vec(),
                    quality: quality_a.to_vec(),
                    data: h264_a,
                },
                RdpEvent::Avc420 {
                    frame_id: Some(42),
                    surface_id: 5,
                    output_origin: Some((200, 100)),
                    surface_x: 0,
                    surface_y: 0,
                    width: 640,
                    height: 480,
                    regions: Vec::new(),
                    quality: Vec::new(),
                    data: h264_b,
                },
            ]
        );
        assert!(ch.take_frames().is_empty());

        // Nothing of the AVC420 reached the compositor; the uncompressed pixels did.
        let client = ch.client_mut();
        assert_eq!(client.dropped_updates(), 2);
        assert_eq!(client.total_frames_decoded(), 2);
        let out = client.drain_output();
        // Output pixel (x, y) of the last update covering it.
        let pixel = |x: u16, y: u16| {
            let u = out
                .iter()
                .rev()
                .find(|u| u.region.left <= x && x < u.region.right && u.region.top <= y && y < u.region.bottom)
                .unwrap();
            let w = usize::from(u.region.right - u.region.left);
            let i = (usize::from(y - u.region.top) * w + usize::from(x - u.region.left)) * 4;
            [u.data[i], u.data[i + 1], u.data[i + 2], u.data[i + 3]]
        };
        assert_eq!(pixel(200, 100), [3, 2, 1, 255]);
        assert_eq!(pixel(201, 100), [6, 5, 4, 255]);
        // Inside both AVC420 regions: still the surface's initial content, like a spot no
        // update touched.
        let untouched = pixel(200 + 600, 100 + 400);
        assert_eq!(pixel(200 + 20, 100 + 10), untouched);
        assert_eq!(pixel(200 + 120, 100 + 60), untouched);
    }

    #[test]
    fn compressed_stream_is_followed() {
        // The reader runs its own ZGFX decompressor: check it with real (compressed) segments,
        // where the second message refers back to the history of the first.
        let h264: Vec<u8> = b"\0\0\0\x01\x65fake-h264-fake-h264-fake-h264".to_vec();
        let mut compressor = zgfx::Compressor::new();
        let mut msgs = Vec::new();
        let setup = [
            GfxPdu::CapabilitiesConfirm(CapabilitiesConfirmPdu::from_typed(
                &capabilities(Egfx::Avc420PassThrough)[0],
            )),
            GfxPdu::CreateSurface(CreateSurfacePdu {
                surface_id: 1,
                width: 64,
                height: 64,
                pixel_format: PixelFormat::XRgb,
            }),
        ];
        for round in 0..2u32 {
            let mut raw = Vec::new();
            if round == 0 {
                for pdu in &setup {
                    raw.extend(encode_vec(pdu).unwrap());
                }
            }
            for pdu in [
                GfxPdu::StartFrame(StartFramePdu {
                    timestamp: Timestamp {
                        milliseconds: 0,
                        seconds: 0,
                        minutes: 0,
                        hours: 0,
                    },
                    frame_id: round,
                }),
                wire(1, Codec1Type::Avc420, (0, 0, 64, 64), avc420_stream(&[(0, 0, 64, 64)], &[(20, false, 90)], &h264)),
                GfxPdu::EndFrame(EndFramePdu { frame_id: round }),
            ] {
                raw.extend(encode_vec(&pdu).unwrap());
            }
            let compressed = compressor.compress(&raw).unwrap();
            msgs.push(zgfx::wrap_compressed(&compressed));
        }
        let mut ch = PassThroughChannel::new();
        let _ = ch.start(1).unwrap();
        for m in &msgs {
            ch.process(1, m).unwrap();
        }
        let frames = ch.take_frames();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.data == h264 && f.output_origin.is_none()));
        assert_eq!(frames[1].frame_id, Some(1));
    }
}
