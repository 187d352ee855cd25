//! The sans-IO client state machine.

use std::collections::VecDeque;

use crate::inflate::Inflater;
use crate::msg::{self, enc};
use crate::reader::Cur;
use crate::{Config, Error, Event, tight, zrle};

/// Longest reason string accepted from the server (RFC 6143 §7.1.2, §7.1.3).
const MAX_REASON: usize = 64 * 1024;
/// Reason strings are cut to this many characters for display.
const KEEP_REASON: usize = 1024;
/// Raw rectangles are emitted in strips of about this many bytes, so a large
/// Raw update is never buffered whole. Strip heights depend only on the
/// rectangle width, so the events do not depend on how the input is chunked.
const RAW_STRIP_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    V3_3,
    V3_7,
    V3_8,
}

#[derive(Clone, Copy, Debug)]
enum ReasonKind {
    Refused,
    AuthFailed,
}

#[derive(Clone, Copy, Debug)]
struct Rect {
    x: u16,
    y: u16,
    w: u16,
    h: u16,
    encoding: i32,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// ProtocolVersion (RFC 6143 §7.1.1).
    Version,
    /// Security types list, 3.7+ (§7.1.2).
    SecurityTypes,
    /// Security type chosen by a 3.3 server (§7.1.2, u32).
    SecurityType33,
    /// VNC Authentication challenge (§7.2.2).
    Challenge,
    /// SecurityResult (§7.1.3).
    SecurityResult,
    /// A reason string that ends the connection.
    Reason(ReasonKind),
    /// ServerInit (§7.3.2).
    ServerInit,
    /// Between server messages (§7.6).
    Idle,
    /// Inside a FramebufferUpdate, expecting a rectangle header (§7.6.1).
    RectHeader { remaining: u16 },
    /// Inside a FramebufferUpdate, expecting a rectangle's payload.
    RectBody { remaining: u16, rect: Rect, rows_done: u16 },
}

/// Sans-IO RFB client: feed it server bytes, send what it transmits, read
/// its events.
pub struct Client {
    config: Config,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    events: VecDeque<Event>,
    state: State,
    dead: Option<Error>,
    version: Version,
    width: u16,
    height: u16,
    connected: bool,
    qemu_key_ack: bool,
    /// Set once the server sent ExtendedDesktopSize: (first screen id, flags).
    screen: Option<(u32, u32)>,
    zrle: Inflater,
    tight: [Inflater; 4],
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("version", &self.version)
            .field("size", &(self.width, self.height))
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn reason_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(KEEP_REASON).collect()
}

impl Client {
    /// A client at the very start of the handshake, waiting for the server's
    /// ProtocolVersion.
    pub fn new(config: Config) -> Client {
        Client {
            config,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
            events: VecDeque::new(),
            state: State::Version,
            dead: None,
            version: Version::V3_8,
            width: 0,
            height: 0,
            connected: false,
            qemu_key_ack: false,
            screen: None,
            zrle: Inflater::new(),
            tight: [Inflater::new(), Inflater::new(), Inflater::new(), Inflater::new()],
        }
    }

    /// Feed bytes received from the server, in any chunking. Everything
    /// complete is parsed; an incomplete message waits for more bytes.
    ///
    /// An error (protocol violation, authentication failure, limit exceeded)
    /// kills the client: later calls return the same error.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.dead {
            return Err(e.clone());
        }
        if self.pos > 0 {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        self.inbuf.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.inbuf);
        let res = self.process(&buf);
        self.inbuf = buf;
        if let Err(e) = res {
            self.inbuf = Vec::new();
            self.pos = 0;
            self.dead = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn process(&mut self, buf: &[u8]) -> Result<(), Error> {
        loop {
            let data = buf.get(self.pos..).unwrap_or(&[]);
            match self.step(data)? {
                Some(n) => self.pos += n,
                None => break,
            }
        }
        let left = buf.len() - self.pos;
        let max = self.config.limits.max_message_bytes;
        if left > max {
            return Err(Error::too_large("message", left as u64, max as u64));
        }
        Ok(())
    }

    /// Bytes to write to the server, in order; `None` when nothing is pending.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() { None } else { Some(std::mem::take(&mut self.out)) }
    }

    /// The next decoded event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether ServerInit has been received (and the client is not dead).
    pub fn is_connected(&self) -> bool {
        self.connected && self.dead.is_none()
    }

    /// Current framebuffer size; `(0, 0)` before ServerInit.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    fn can_send(&self) -> bool {
        self.is_connected()
    }

    /// Key press or release. `scancode` is PC XT set 1 (`0xE0xx` for
    /// extended keys, 0 if unknown). A QEMU Extended Key Event is sent when
    /// enabled, acknowledged by the server and the scancode is known;
    /// otherwise a KeyEvent (RFC 6143 §7.5.4).
    pub fn send_key(&mut self, down: bool, keysym: u32, scancode: u16) {
        if !self.can_send() {
            return;
        }
        if self.config.use_qemu_key_events
            && self.qemu_key_ack
            && let Some(code) = msg::qemu_keycode(scancode)
        {
            msg::qemu_key_event(&mut self.out, down, keysym, code);
            return;
        }
        msg::key_event(&mut self.out, down, keysym);
    }

    /// PointerEvent (RFC 6143 §7.5.5); `buttons` is the RFB button mask.
    /// Coordinates are clamped to the framebuffer.
    pub fn send_pointer(&mut self, x: u16, y: u16, buttons: u8) {
        if !self.can_send() {
            return;
        }
        let x = x.min(self.width.saturating_sub(1));
        let y = y.min(self.height.saturating_sub(1));
        msg::pointer_event(&mut self.out, x, y, buttons);
    }

    /// ClientCutText (RFC 6143 §7.5.6); characters outside Latin-1 become `?`.
    pub fn send_cut_text(&mut self, text: &str) {
        if !self.can_send() {
            return;
        }
        msg::client_cut_text(&mut self.out, text);
    }

    /// FramebufferUpdateRequest for the whole screen (RFC 6143 §7.5.3).
    pub fn request_update(&mut self, incremental: bool) {
        if !self.can_send() {
            return;
        }
        msg::update_request(&mut self.out, incremental, 0, 0, self.width, self.height);
    }

    /// Ask the server to resize the desktop (SetDesktopSize, client message
    /// 251). Returns `false` when the server has not announced
    /// ExtendedDesktopSize support or the size is invalid.
    pub fn request_desktop_size(&mut self, width: u16, height: u16) -> bool {
        let Some((id, flags)) = self.screen else { return false };
        if !self.can_send() || width == 0 || height == 0 {
            return false;
        }
        msg::set_desktop_size(&mut self.out, width, height, id, flags);
        true
    }

    fn encodings(&self) -> Vec<i32> {
        let mut v = vec![
            enc::TIGHT,
            enc::ZRLE,
            enc::COPY_RECT,
            enc::RAW,
            enc::CURSOR,
            enc::DESKTOP_SIZE,
            enc::EXTENDED_DESKTOP_SIZE,
            enc::LAST_RECT,
        ];
        if self.config.use_qemu_key_events {
            v.push(enc::QEMU_EXTENDED_KEY);
        }
        if let Some(q) = self.config.jpeg_quality {
            v.push(enc::JPEG_QUALITY_0 + i32::from(q.min(9)));
        }
        if let Some(l) = self.config.compress_level {
            v.push(enc::COMPRESS_LEVEL_0 + i32::from(l.min(9)));
        }
        v
    }

    fn check_size(&self, w: u16, h: u16) -> Result<(), Error> {
        let l = &self.config.limits;
        if w > l.max_width {
            return Err(Error::too_large("framebuffer width", w.into(), l.max_width.into()));
        }
        if h > l.max_height {
            return Err(Error::too_large("framebuffer height", h.into(), l.max_height.into()));
        }
        Ok(())
    }

    fn check_payload(&self, what: &'static str, n: usize) -> Result<(), Error> {
        let max = self.config.limits.max_message_bytes;
        if n > max {
            return Err(Error::too_large(what, n as u64, max as u64));
        }
        Ok(())
    }

    fn check_in_fb(&self, x: u16, y: u16, w: u16, h: u16) -> Result<(), Error> {
        if u32::from(x) + u32::from(w) > u32::from(self.width)
            || u32::from(y) + u32::from(h) > u32::from(self.height)
        {
            return Err(Error::Protocol(format!(
                "rectangle {w}x{h}+{x}+{y} outside the {}x{} framebuffer",
                self.width, self.height
            )));
        }
        Ok(())
    }

    fn send_client_init(&mut self) {
        self.out.push(u8::from(self.config.shared));
        self.state = State::ServerInit;
    }

    fn choose_security(&mut self, offered: &[u8]) -> Result<u8, Error> {
        if self.config.password.is_some() && offered.contains(&2) {
            Ok(2)
        } else if offered.contains(&1) {
            Ok(1)
        } else if offered.contains(&2) {
            Err(Error::PasswordRequired)
        } else {
            Err(Error::NoSupportedSecurity { offered: offered.to_vec() })
        }
    }

    /// Parses one unit from `data`. `Some(n)`: progress, `n` bytes consumed.
    /// `None`: more bytes are needed.
    fn step(&mut self, data: &[u8]) -> Result<Option<usize>, Error> {
        let mut c = Cur::new(data);
        match self.state {
            State::Version => {
                let Some(v) = c.take(12) else { return Ok(None) };
                self.version = parse_version(v)?;
                let reply: &[u8] = match self.version {
                    Version::V3_3 => b"RFB 003.003\n",
                    Version::V3_7 => b"RFB 003.007\n",
                    Version::V3_8 => b"RFB 003.008\n",
                };
                self.out.extend_from_slice(reply);
                self.state = if self.version == Version::V3_3 {
                    State::SecurityType33
                } else {
                    State::SecurityTypes
                };
            }
            State::SecurityTypes => {
                let Some(n) = c.u8() else { return Ok(None) };
                if n == 0 {
                    self.state = State::Reason(ReasonKind::Refused);
                } else {
                    let Some(offered) = c.take(usize::from(n)) else { return Ok(None) };
                    let t = self.choose_security(offered)?;
                    self.out.push(t);
                    if t == 2 {
                        self.state = State::Challenge;
                    } else if self.version >= Version::V3_8 {
                        self.state = State::SecurityResult;
                    } else {
                        // 3.7 sends no SecurityResult for None (§7.1.3).
                        self.send_client_init();
                    }
                }
            }
            State::SecurityType33 => {
                let Some(t) = c.u32() else { return Ok(None) };
                match t {
                    0 => self.state = State::Reason(ReasonKind::Refused),
                    1 => self.send_client_init(),
                    2 if self.config.password.is_some() => self.state = State::Challenge,
                    2 => return Err(Error::PasswordRequired),
                    t => {
                        return Err(Error::NoSupportedSecurity {
                            offered: vec![u8::try_from(t).unwrap_or(u8::MAX)],
                        });
                    }
                }
            }
            State::Challenge => {
                let Some(ch) = c.array::<16>() else { return Ok(None) };
                let Some(pw) = self.config.password.as_deref() else {
                    return Err(Error::PasswordRequired);
                };
                let resp = crate::auth::vnc_auth_response(pw, &ch);
                self.out.extend_from_slice(&resp);
                self.state = State::SecurityResult;
            }
            State::SecurityResult => {
                let Some(r) = c.u32() else { return Ok(None) };
                if r == 0 {
                    self.send_client_init();
                } else if self.version >= Version::V3_8 {
                    self.state = State::Reason(ReasonKind::AuthFailed);
                } else {
                    return Err(Error::AuthenticationFailed { reason: String::new() });
                }
            }
            State::Reason(kind) => {
                let Some(len) = c.u32() else { return Ok(None) };
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > MAX_REASON {
                    return Err(Error::too_large("reason string", len as u64, MAX_REASON as u64));
                }
                let Some(text) = c.take(len) else { return Ok(None) };
                let reason = reason_text(text);
                return Err(match kind {
                    ReasonKind::Refused => Error::ServerRefused { reason },
                    ReasonKind::AuthFailed => Error::AuthenticationFailed { reason },
                });
            }
            State::ServerInit => {
                let (Some(w), Some(h), Some(_pf), Some(name_len)) =
                    (c.u16(), c.u16(), c.take(16), c.u32())
                else {
                    return Ok(None);
                };
                self.check_size(w, h)?;
                let name_len = usize::try_from(name_len).unwrap_or(usize::MAX);
                let max = self.config.limits.max_name;
                if name_len > max {
                    return Err(Error::too_large("desktop name", name_len as u64, max as u64));
                }
                let Some(name) = c.take(name_len) else { return Ok(None) };
                let name = match std::str::from_utf8(name) {
                    Ok(s) => s.to_owned(),
                    Err(_) => latin1(name),
                };
                self.width = w;
                self.height = h;
                self.connected = true;
                msg::set_pixel_format(&mut self.out);
                let encs = self.encodings();
                msg::set_encodings(&mut self.out, &encs);
                msg::update_request(&mut self.out, false, 0, 0, w, h);
                self.events.push_back(Event::Connected { width: w, height: h, name });
                self.state = State::Idle;
            }
            State::Idle => return self.server_message(&mut c),
            State::RectHeader { remaining } => {
                let (Some(x), Some(y), Some(w), Some(h), Some(encoding)) =
                    (c.u16(), c.u16(), c.u16(), c.u16(), c.i32())
                else {
                    return Ok(None);
                };
                let rect = Rect { x, y, w, h, encoding };
                let remaining = remaining.saturating_sub(1);
                match encoding {
                    enc::LAST_RECT => self.end_update(),
                    enc::RAW | enc::COPY_RECT | enc::ZRLE | enc::TIGHT => {
                        self.check_in_fb(x, y, w, h)?;
                        self.state = State::RectBody { remaining, rect, rows_done: 0 };
                    }
                    enc::CURSOR
                    | enc::DESKTOP_SIZE
                    | enc::EXTENDED_DESKTOP_SIZE
                    | enc::QEMU_EXTENDED_KEY => {
                        self.state = State::RectBody { remaining, rect, rows_done: 0 };
                    }
                    e => return Err(Error::Protocol(format!("unknown rectangle encoding {e}"))),
                }
            }
            State::RectBody { remaining, rect, rows_done } => {
                return self.rect_body(&mut c, remaining, rect, rows_done);
            }
        }
        Ok(Some(c.pos()))
    }

    fn end_update(&mut self) {
        self.events.push_back(Event::UpdateEnd);
        self.state = State::Idle;
    }

    fn rect_done(&mut self, remaining: u16) {
        if remaining == 0 {
            self.end_update();
        } else {
            self.state = State::RectHeader { remaining };
        }
    }

    /// Server-to-client messages (RFC 6143 §7.6).
    fn server_message(&mut self, c: &mut Cur<'_>) -> Result<Option<usize>, Error> {
        let Some(t) = c.u8() else { return Ok(None) };
        match t {
            0 => {
                let (Some(_), Some(n)) = (c.u8(), c.u16()) else { return Ok(None) };
                if n == 0 {
                    self.end_update();
                } else {
                    self.state = State::RectHeader { remaining: n };
                }
            }
            1 => {
                let (Some(_), Some(_first), Some(n)) = (c.u8(), c.u16(), c.u16()) else {
                    return Ok(None);
                };
                // We asked for true colour; colour maps are ignored.
                if c.take(usize::from(n) * 6).is_none() {
                    return Ok(None);
                }
            }
            2 => self.events.push_back(Event::Bell),
            3 => {
                let (Some(_), Some(len)) = (c.take(3), c.u32()) else { return Ok(None) };
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let max = self.config.limits.max_cut_text;
                if len > max {
                    return Err(Error::too_large("cut text", len as u64, max as u64));
                }
                let Some(text) = c.take(len) else { return Ok(None) };
                self.events.push_back(Event::ServerCutText(latin1(text)));
            }
            t => return Err(Error::Protocol(format!("unknown server message type {t}"))),
        }
        Ok(Some(c.pos()))
    }

    fn rect_body(
        &mut self,
        c: &mut Cur<'_>,
        remaining: u16,
        rect: Rect,
        rows_done: u16,
    ) -> Result<Option<usize>, Error> {
        let Rect { x, y, w, h, encoding } = rect;
        let (wu, hu) = (usize::from(w), usize::from(h));
        match encoding {
            enc::RAW => {
                if wu > 0 && hu > 0 {
                    let row = wu * 4;
                    let left = h.saturating_sub(rows_done);
                    let per = u16::try_from((RAW_STRIP_BYTES / row).max(1)).unwrap_or(u16::MAX);
                    let strip = left.min(per);
                    let need = usize::from(strip) * row;
                    self.check_payload("raw strip", need)?;
                    let Some(px) = c.take(need) else { return Ok(None) };
                    let mut rgba = px.to_vec();
                    for p in rgba.chunks_exact_mut(4) {
                        p[3] = 255;
                    }
                    self.events.push_back(Event::Pixels {
                        x,
                        y: y.saturating_add(rows_done),
                        width: w,
                        height: strip,
                        rgba,
                    });
                    let rows_done = rows_done.saturating_add(strip);
                    if rows_done < h {
                        self.state = State::RectBody { remaining, rect, rows_done };
                        return Ok(Some(c.pos()));
                    }
                }
            }
            enc::COPY_RECT => {
                let (Some(sx), Some(sy)) = (c.u16(), c.u16()) else { return Ok(None) };
                self.check_in_fb(sx, sy, w, h)?;
                if wu > 0 && hu > 0 {
                    self.events.push_back(Event::Copy { src_x: sx, src_y: sy, x, y, width: w, height: h });
                }
            }
            enc::ZRLE => {
                let Some(len) = c.u32() else { return Ok(None) };
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                self.check_payload("zrle data", len)?;
                let Some(data) = c.take(len) else { return Ok(None) };
                zrle::decode(&mut self.zrle, data, x, y, w, h, &mut self.events)?;
            }
            enc::TIGHT => {
                let max = self.config.limits.max_message_bytes;
                let Some(parsed) = tight::parse(c, w, h, max)? else { return Ok(None) };
                tight::decode(&mut self.tight, parsed, x, y, w, h, &mut self.events)?;
            }
            enc::CURSOR => {
                let mask_row = wu.div_ceil(8);
                let px_len = wu.saturating_mul(hu).saturating_mul(4);
                self.check_payload("cursor", px_len.saturating_add(mask_row * hu))?;
                let (Some(px), Some(mask)) = (c.take(px_len), c.take(mask_row * hu)) else {
                    return Ok(None);
                };
                let mut rgba = px.to_vec();
                for (i, p) in rgba.chunks_exact_mut(4).enumerate() {
                    let (row, col) = (i / wu.max(1), i % wu.max(1));
                    let bit = mask.get(row * mask_row + col / 8).map_or(0, |b| (b >> (7 - col % 8)) & 1);
                    p[3] = if bit == 1 { 255 } else { 0 };
                }
                self.events.push_back(Event::Cursor { hotspot_x: x, hotspot_y: y, width: w, height: h, rgba });
            }
            enc::DESKTOP_SIZE => self.resize(w, h)?,
            enc::EXTENDED_DESKTOP_SIZE => {
                let (Some(n), Some(_)) = (c.u8(), c.take(3)) else { return Ok(None) };
                let Some(screens) = c.take(usize::from(n) * 16) else { return Ok(None) };
                let first = screens.get(..16).map(|s| {
                    let id = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                    let flags = u32::from_be_bytes([s[12], s[13], s[14], s[15]]);
                    (id, flags)
                });
                self.screen = Some(first.unwrap_or((0, 0)));
                // y carries the status: non-zero means our SetDesktopSize failed.
                if y == 0 {
                    self.resize(w, h)?;
                }
            }
            enc::QEMU_EXTENDED_KEY => self.qemu_key_ack = true,
            e => return Err(Error::Protocol(format!("unknown rectangle encoding {e}"))),
        }
        self.rect_done(remaining);
        Ok(Some(c.pos()))
    }

    fn resize(&mut self, w: u16, h: u16) -> Result<(), Error> {
        self.check_size(w, h)?;
        if (w, h) != (self.width, self.height) {
            self.width = w;
            self.height = h;
            self.events.push_back(Event::Resize { width: w, height: h });
        }
        Ok(())
    }
}

/// ProtocolVersion "RFB xxx.yyy\n" (RFC 6143 §7.1.1). 3.3 and 3.7 are
/// answered as such, 3.8 and anything newer in the 3.x line (e.g. Apple's
/// 3.889) as 3.8, and the non-standard 3.4 to 3.6 as 3.3 as the RFC says.
fn parse_version(v: &[u8]) -> Result<Version, Error> {
    let shown = || String::from_utf8_lossy(v).trim_end().to_owned();
    let digits = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
    };
    if v.len() != 12 || &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' {
        return Err(Error::Protocol(format!("not an RFB server: {:?}", shown())));
    }
    let (Some(major), Some(minor)) = (digits(&v[4..7]), digits(&v[8..11])) else {
        return Err(Error::Protocol(format!("not an RFB server: {:?}", shown())));
    };
    match (major, minor) {
        (3, 3..=6) => Ok(Version::V3_3),
        (3, 7) => Ok(Version::V3_7),
        (3, 8..) => Ok(Version::V3_8),
        _ => Err(Error::UnsupportedVersion(shown())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Limits;
    use crate::inflate::tests::Deflater;

    // ---------- server stream builders ----------

    fn server_init(w: u16, h: u16, name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        // Server pixel format (ignored): 32bpp depth 24 big-endian.
        v.extend_from_slice(&[32, 24, 1, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        v.extend_from_slice(&(name.len() as u32).to_be_bytes());
        v.extend_from_slice(name.as_bytes());
        v
    }

    /// 3.8, security None, OK, ServerInit.
    fn handshake(w: u16, h: u16) -> Vec<u8> {
        let mut v = b"RFB 003.008\n".to_vec();
        v.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
        v.extend(server_init(w, h, "test"));
        v
    }

    fn rect(x: u16, y: u16, w: u16, h: u16, enc: i32) -> Vec<u8> {
        let mut v = Vec::new();
        for n in [x, y, w, h] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&enc.to_be_bytes());
        v
    }

    fn fbu(rects: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(&(rects.len() as u16).to_be_bytes());
        for r in rects {
            v.extend_from_slice(r);
        }
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn compact(n: usize) -> Vec<u8> {
        let mut v = vec![(n & 0x7f) as u8];
        if n > 0x7f {
            v[0] |= 0x80;
            v.push(((n >> 7) & 0x7f) as u8);
            if n > 0x3fff {
                v[1] |= 0x80;
                v.push((n >> 14) as u8);
            }
        }
        v
    }

    fn drain(c: &mut Client) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn connected(w: u16, h: u16, cfg: Config) -> Client {
        let mut c = Client::new(cfg);
        c.handle_input(&handshake(w, h)).unwrap();
        assert!(c.is_connected());
        drain(&mut c);
        c.poll_transmit();
        c
    }

    /// Events after feeding `stream` all at once, then one byte at a time:
    /// both must agree.
    fn events_both_ways(w: u16, h: u16, cfg: Config, stream: &[u8]) -> Vec<Event> {
        let mut a = connected(w, h, cfg.clone());
        a.handle_input(stream).unwrap();
        let ea = drain(&mut a);
        let mut b = connected(w, h, cfg);
        for byte in stream {
            b.handle_input(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(ea, drain(&mut b));
        ea
    }

    fn rgba_of(rgb: &[[u8; 3]]) -> Vec<u8> {
        rgb.iter().flat_map(|p| [p[0], p[1], p[2], 255]).collect()
    }

    // ---------- handshake ----------

    #[test]
    fn handshake_38_none() {
        let mut c = Client::new(Config::default());
        assert!(c.poll_transmit().is_none());
        c.handle_input(b"RFB 003.008\n").unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.008\n");
        c.handle_input(&[2, 1, 2]).unwrap();
        assert_eq!(c.poll_transmit().unwrap(), [1]);
        c.handle_input(&[0, 0, 0, 0]).unwrap();
        assert_eq!(c.poll_transmit().unwrap(), [1]); // ClientInit shared
        assert!(!c.is_connected());
        c.handle_input(&server_init(800, 600, "desk")).unwrap();
        assert!(c.is_connected());
        assert_eq!(c.size(), (800, 600));
        let tx = c.poll_transmit().unwrap();
        let mut expect = vec![0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0];
        expect.extend_from_slice(&[2, 0, 0, 9]);
        for e in [7i32, 16, 1, 0, -239, -223, -308, -224, -250] {
            expect.extend_from_slice(&e.to_be_bytes());
        }
        expect.extend_from_slice(&[3, 0, 0, 0, 0, 0, 3, 32, 2, 88]);
        assert_eq!(tx, expect);
        assert_eq!(
            drain(&mut c),
            [Event::Connected { width: 800, height: 600, name: "desk".into() }]
        );
    }

    #[test]
    fn encodings_with_options() {
        let cfg = Config {
            jpeg_quality: Some(8),
            compress_level: None,
            use_qemu_key_events: true,
            shared: false,
            ..Config::default()
        };
        let mut c = Client::new(cfg);
        c.handle_input(&b"RFB 003.008\n\x01\x01\x00\x00\x00\x00"[..]).unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.008\n\x01\x00");
        c.handle_input(&server_init(10, 10, "")).unwrap();
        let tx = c.poll_transmit().unwrap();
        let mut encs = vec![2, 0, 0, 10];
        for e in [7i32, 16, 1, 0, -239, -223, -308, -224, -258, -24] {
            encs.extend_from_slice(&e.to_be_bytes());
        }
        assert_eq!(&tx[20..20 + encs.len()], &encs[..]);
    }

    #[test]
    fn vnc_auth_success() {
        let cfg = Config { password: Some("password".into()), ..Config::default() };
        let mut c = Client::new(cfg);
        c.handle_input(b"RFB 003.008\n").unwrap();
        c.handle_input(&[2, 1, 2]).unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.008\n\x02");
        let challenge: Vec<u8> = (0..16).collect();
        c.handle_input(&challenge).unwrap();
        // Independent vector (OpenSSL DES-ECB, key "password" bit-reversed).
        let expected = [
            0xb8, 0x66, 0x92, 0x41, 0x25, 0xc8, 0xee, 0xbb, 0x9d, 0xeb, 0xc1, 0xdb, 0x61, 0xc5,
            0x38, 0xe2,
        ];
        assert_eq!(c.poll_transmit().unwrap(), expected);
        c.handle_input(&[0, 0, 0, 0]).unwrap();
        assert_eq!(c.poll_transmit().unwrap(), [1]);
        c.handle_input(&server_init(4, 4, "x")).unwrap();
        assert!(c.is_connected());
    }

    #[test]
    fn vnc_auth_failure_with_reason() {
        let cfg = Config { password: Some("nope".into()), ..Config::default() };
        let mut c = Client::new(cfg);
        let mut s = b"RFB 003.008\n\x01\x02".to_vec();
        s.extend_from_slice(&[0; 16]);
        s.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 12]);
        s.extend_from_slice(b"bad password");
        let err = c.handle_input(&s).unwrap_err();
        assert_eq!(err, Error::AuthenticationFailed { reason: "bad password".into() });
        assert_eq!(err.code(), "auth_failed");
        // Dead: same error again.
        assert_eq!(c.handle_input(&[0]).unwrap_err(), err);
        assert!(!c.is_connected());
    }

    #[test]
    fn password_required_and_no_supported_security() {
        let mut c = Client::new(Config::default());
        assert_eq!(
            c.handle_input(b"RFB 003.008\n\x01\x02").unwrap_err(),
            Error::PasswordRequired
        );
        let mut c = Client::new(Config::default());
        assert_eq!(
            c.handle_input(b"RFB 003.008\n\x02\x10\x13").unwrap_err(),
            Error::NoSupportedSecurity { offered: vec![16, 19] }
        );
    }

    #[test]
    fn refused_with_reason() {
        let mut c = Client::new(Config::default());
        let mut s = b"RFB 003.008\n\x00\x00\x00\x00\x04".to_vec();
        s.extend_from_slice(b"busy");
        let err = c.handle_input(&s).unwrap_err();
        assert_eq!(err, Error::ServerRefused { reason: "busy".into() });
        assert_eq!(err.code(), "refused");
    }

    #[test]
    fn server_33_none_and_vnc_auth() {
        let mut c = Client::new(Config::default());
        c.handle_input(b"RFB 003.003\n\x00\x00\x00\x01").unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.003\n\x01");
        c.handle_input(&server_init(2, 2, "")).unwrap();
        assert!(c.is_connected());

        let cfg = Config { password: Some("password".into()), ..Config::default() };
        let mut c = Client::new(cfg);
        let mut s = b"RFB 003.003\n\x00\x00\x00\x02".to_vec();
        s.extend(0..16u8);
        c.handle_input(&s).unwrap();
        let tx = c.poll_transmit().unwrap();
        assert_eq!(&tx[..12], b"RFB 003.003\n");
        assert_eq!(tx.len(), 12 + 16);
        // 3.3 failure has no reason string.
        assert_eq!(
            c.handle_input(&[0, 0, 0, 1]).unwrap_err(),
            Error::AuthenticationFailed { reason: String::new() }
        );
    }

    #[test]
    fn server_37_none_has_no_security_result() {
        let mut c = Client::new(Config::default());
        c.handle_input(b"RFB 003.007\n\x01\x01").unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.007\n\x01\x01");
        c.handle_input(&server_init(2, 2, "")).unwrap();
        assert!(c.is_connected());
    }

    #[test]
    fn versions() {
        let mut c = Client::new(Config::default());
        c.handle_input(b"RFB 003.889\n").unwrap();
        assert_eq!(c.poll_transmit().unwrap(), b"RFB 003.008\n");
        let mut c = Client::new(Config::default());
        let e = c.handle_input(b"RFB 004.001\n").unwrap_err();
        assert!(matches!(e, Error::UnsupportedVersion(_)));
        assert_eq!(e.code(), "unsupported");
        let mut c = Client::new(Config::default());
        assert!(matches!(c.handle_input(b"HTTP/1.1 400"), Err(Error::Protocol(_))));
    }

    #[test]
    fn absurd_server_init() {
        let mut c = Client::new(Config::default());
        let mut s = b"RFB 003.008\n\x01\x01\x00\x00\x00\x00".to_vec();
        s.extend(server_init(65535, 100, ""));
        let e = c.handle_input(&s).unwrap_err();
        assert!(matches!(e, Error::TooLarge { what: "framebuffer width", .. }));
        assert_eq!(e.code(), "too_large");

        let mut c = Client::new(Config::default());
        let mut s = b"RFB 003.008\n\x01\x01\x00\x00\x00\x00".to_vec();
        let mut si = server_init(10, 10, "");
        si[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
        s.extend(si);
        assert!(matches!(c.handle_input(&s), Err(Error::TooLarge { what: "desktop name", .. })));
    }

    // ---------- encodings ----------

    #[test]
    fn raw_and_copyrect() {
        let px = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 0];
        let s = fbu(&[cat(&[&rect(1, 1, 2, 2, 0), &px]), cat(&[&rect(0, 0, 2, 2, 1), &[0, 1, 0, 1]])]);
        let ev = events_both_ways(4, 4, Config::default(), &s);
        assert_eq!(
            ev,
            [
                Event::Pixels {
                    x: 1,
                    y: 1,
                    width: 2,
                    height: 2,
                    rgba: vec![1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255, 10, 11, 12, 255]
                },
                Event::Copy { src_x: 1, src_y: 1, x: 0, y: 0, width: 2, height: 2 },
                Event::UpdateEnd,
            ]
        );
    }

    #[test]
    fn raw_in_strips() {
        let (w, h) = (1000u16, 200u16);
        let px: Vec<u8> = (0..usize::from(w) * usize::from(h) * 4).map(|i| i as u8).collect();
        let s = fbu(&[cat(&[&rect(0, 0, w, h, 0), &px])]);
        let mut c = connected(w, h, Config::default());
        for chunk in s.chunks(7777) {
            c.handle_input(chunk).unwrap();
        }
        let ev = drain(&mut c);
        // 256 KiB / 4000 bytes per row = 65 rows per strip.
        let heights: Vec<u16> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Pixels { height, .. } => Some(*height),
                _ => None,
            })
            .collect();
        assert_eq!(heights, [65, 65, 65, 5]);
        let mut all = Vec::new();
        for e in &ev {
            if let Event::Pixels { rgba, .. } = e {
                all.extend_from_slice(rgba);
            }
        }
        let mut expect = px.clone();
        for p in expect.chunks_exact_mut(4) {
            p[3] = 255;
        }
        assert_eq!(all, expect);
        assert_eq!(ev.last(), Some(&Event::UpdateEnd));
    }

    /// Builds a ZRLE rect 70x66 (tiles 64x64, 6x64, 64x2, 6x2) with one tile
    /// of each kind, and returns (tile data, expected RGB of the rect).
    fn zrle_sample() -> (Vec<u8>, Vec<[u8; 3]>) {
        let (w, h) = (70usize, 66usize);
        let mut img = vec![[0u8; 3]; w * h];
        let mut d = Vec::new();
        // Tile (0,0) 64x64: solid.
        d.push(1);
        d.extend_from_slice(&[10, 20, 30]);
        for y in 0..64 {
            for x in 0..64 {
                img[y * w + x] = [10, 20, 30];
            }
        }
        // Tile (64,0) 6x64: packed palette with 3 colours (2 bits, row = 2 bytes).
        let pal = [[1, 1, 1], [2, 2, 2], [3, 3, 3]];
        d.push(3);
        for p in pal {
            d.extend_from_slice(&p);
        }
        for y in 0..64 {
            let idx: Vec<u8> = (0..6).map(|x| ((x + y) % 3) as u8).collect();
            let mut row = [0u8; 2];
            for (x, &i) in idx.iter().enumerate() {
                row[x * 2 / 8] |= i << (6 - (x * 2) % 8);
                img[y * w + 64 + x] = pal[usize::from(i)];
            }
            d.extend_from_slice(&row);
        }
        // Tile (0,64) 64x2: plain RLE: run of 100 red, run of 28 green.
        d.push(128);
        d.extend_from_slice(&[255, 0, 0, 99]);
        d.extend_from_slice(&[0, 255, 0, 27]);
        for i in 0..128 {
            let (x, y) = (i % 64, 64 + i / 64);
            img[y * w + x] = if i < 100 { [255, 0, 0] } else { [0, 255, 0] };
        }
        // Tile (64,64) 6x2: raw.
        d.push(0);
        for i in 0..12u8 {
            let p = [i, i * 2, i * 3];
            d.extend_from_slice(&p);
            img[(64 + usize::from(i) / 6) * w + 64 + usize::from(i) % 6] = p;
        }
        (d, img)
    }

    fn pixels_to_image(ev: &[Event], fw: usize, fh: usize) -> Vec<[u8; 3]> {
        let mut img = vec![[0u8; 3]; fw * fh];
        for e in ev {
            match e {
                Event::Pixels { x, y, width, height, rgba } => {
                    for j in 0..usize::from(*height) {
                        for i in 0..usize::from(*width) {
                            let o = (j * usize::from(*width) + i) * 4;
                            img[(usize::from(*y) + j) * fw + usize::from(*x) + i] =
                                [rgba[o], rgba[o + 1], rgba[o + 2]];
                        }
                    }
                }
                Event::Fill { x, y, width, height, rgb } => {
                    for j in 0..usize::from(*height) {
                        for i in 0..usize::from(*width) {
                            img[(usize::from(*y) + j) * fw + usize::from(*x) + i] = *rgb;
                        }
                    }
                }
                _ => {}
            }
        }
        img
    }

    #[test]
    fn zrle_tiles_and_persistent_stream() {
        let (tiles, img) = zrle_sample();
        let mut z = Deflater::new();
        let c1 = z.chunk(&tiles);
        // Second rect 3x1 at (0,0) in the same stream: palette RLE, 2 colours.
        let c2 = z.chunk(&[130, 9, 9, 9, 7, 7, 7, 0, 0x81, 1]);
        let mut s1 = rect(0, 0, 70, 66, 16);
        s1.extend_from_slice(&(c1.len() as u32).to_be_bytes());
        s1.extend_from_slice(&c1);
        let mut s2 = rect(0, 0, 3, 1, 16);
        s2.extend_from_slice(&(c2.len() as u32).to_be_bytes());
        s2.extend_from_slice(&c2);
        let ev = events_both_ways(70, 66, Config::default(), &fbu(&[s1]));
        assert_eq!(pixels_to_image(&ev, 70, 66), img);
        assert_eq!(ev.last(), Some(&Event::UpdateEnd));

        let mut c = connected(70, 66, Config::default());
        c.handle_input(&fbu(&[cat(&[&rect(0, 0, 70, 66, 16), &(c1.len() as u32).to_be_bytes(), &c1]), s2]))
            .unwrap();
        let ev = drain(&mut c);
        assert_eq!(
            ev[ev.len() - 2],
            Event::Pixels { x: 0, y: 0, width: 3, height: 1, rgba: rgba_of(&[[9, 9, 9], [7, 7, 7], [7, 7, 7]]) }
        );
    }

    #[test]
    fn zrle_solid_rect_is_one_fill() {
        let mut z = Deflater::new();
        // 100x100: 2x2 tiles, all solid grey.
        let tiles: Vec<u8> = (0..4).flat_map(|_| [1u8, 50, 60, 70]).collect();
        let c = z.chunk(&tiles);
        let s = fbu(&[cat(&[&rect(0, 0, 100, 100, 16), &(c.len() as u32).to_be_bytes(), &c])]);
        let ev = events_both_ways(100, 100, Config::default(), &s);
        assert_eq!(
            ev,
            [Event::Fill { x: 0, y: 0, width: 100, height: 100, rgb: [50, 60, 70] }, Event::UpdateEnd]
        );
    }

    #[test]
    fn zrle_errors() {
        let mut z = Deflater::new();
        for bad in [vec![17u8], vec![129], vec![128, 1, 2, 3, 1], vec![2, 0, 0, 0, 0, 0, 0]] {
            let c = z.chunk(&bad);
            let s = fbu(&[cat(&[&rect(0, 0, 1, 1, 16), &(c.len() as u32).to_be_bytes(), &c])]);
            let mut cl = connected(4, 4, Config::default());
            assert!(cl.handle_input(&s).is_err(), "{bad:?}");
            z = Deflater::new();
        }
    }

    fn tight_rect(x: u16, y: u16, w: u16, h: u16, body: &[u8]) -> Vec<u8> {
        cat(&[&rect(x, y, w, h, 7), body])
    }

    #[test]
    fn tight_fill_copy_palette_gradient() {
        let mut z0 = Deflater::new();
        let mut z1 = Deflater::new();
        // Fill.
        let fill = tight_rect(0, 0, 8, 8, &[0x80, 1, 2, 3]);
        // Basic copy, stream 0, compressed (4x2x3 = 24 bytes).
        let rgb: Vec<u8> = (0..24).collect();
        let c = z0.chunk(&rgb);
        let copy = tight_rect(4, 4, 4, 2, &cat(&[&[0x00], &compact(c.len()), &c]));
        // Basic copy with explicit filter byte, 3x1 = 9 bytes: sent uncompressed.
        let small = tight_rect(0, 7, 3, 1, &[0x40, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        // Palette, 2 colours, stream 1, 10x2: rows of 2 bytes = 4 bytes raw (< 12).
        let pal2 = tight_rect(0, 0, 10, 2, &[0x50, 1, 1, 0, 0, 0, 255, 255, 255, 0b1010_0000, 0b0100_0000, 0xff, 0xc0]);
        // Palette, 3 colours, stream 1 compressed, 4x4 = 16 indices.
        let idx: Vec<u8> = (0..16).map(|i| (i % 3) as u8).collect();
        let c = z1.chunk(&idx);
        let pal3 = tight_rect(
            0,
            0,
            4,
            4,
            &cat(&[&[0x50, 1, 2], &[10, 0, 0, 0, 20, 0, 0, 0, 30], &compact(c.len()), &c]),
        );
        // Gradient, stream 0 (continuing), 2x2.
        let diff = [10, 20, 30, 1, 1, 1, 2, 2, 2, 0, 0, 0];
        let c = z0.chunk(&diff);
        let grad = tight_rect(0, 0, 2, 2, &cat(&[&[0x40, 2], &compact(c.len()), &c]));
        let s = fbu(&[fill, copy, small, pal2, pal3, grad]);
        let ev = events_both_ways(10, 8, Config::default(), &s);
        assert_eq!(ev[0], Event::Fill { x: 0, y: 0, width: 8, height: 8, rgb: [1, 2, 3] });
        let expect: Vec<[u8; 3]> = rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(ev[1], Event::Pixels { x: 4, y: 4, width: 4, height: 2, rgba: rgba_of(&expect) });
        assert_eq!(
            ev[2],
            Event::Pixels { x: 0, y: 7, width: 3, height: 1, rgba: rgba_of(&[[9, 8, 7], [6, 5, 4], [3, 2, 1]]) }
        );
        let (b, wh) = ([0, 0, 0], [255, 255, 255]);
        let row0 = [wh, b, wh, b, b, b, b, b, b, wh];
        let row1 = [wh, wh, wh, wh, wh, wh, wh, wh, wh, wh];
        assert_eq!(
            ev[3],
            Event::Pixels { x: 0, y: 0, width: 10, height: 2, rgba: rgba_of(&[row0, row1].concat()) }
        );
        let p3 = [[10, 0, 0], [0, 20, 0], [0, 0, 30]];
        let expect: Vec<[u8; 3]> = idx.iter().map(|&i| p3[usize::from(i)]).collect();
        assert_eq!(ev[4], Event::Pixels { x: 0, y: 0, width: 4, height: 4, rgba: rgba_of(&expect) });
        assert_eq!(
            ev[5],
            Event::Pixels {
                x: 0,
                y: 0,
                width: 2,
                height: 2,
                rgba: rgba_of(&[[10, 20, 30], [11, 21, 31], [12, 22, 32], [13, 23, 33]])
            }
        );
        assert_eq!(ev[6], Event::UpdateEnd);
    }

    #[test]
    fn tight_reset_bits() {
        let rgb: Vec<u8> = (0..48).collect();
        let mut z = Deflater::new();
        let c1 = z.chunk(&rgb);
        // A fresh stream after reset on stream 2.
        let mut z2 = Deflater::new();
        let c2 = z2.chunk(&rgb);
        let r1 = tight_rect(0, 0, 4, 4, &cat(&[&[0x20], &compact(c1.len()), &c1]));
        let r2 = tight_rect(0, 0, 4, 4, &cat(&[&[0x24], &compact(c2.len()), &c2]));
        let ev = events_both_ways(4, 4, Config::default(), &fbu(&[r1.clone(), r2]));
        assert_eq!(ev[0], ev[1]);
        // Without the reset bit, a new zlib header on the old stream is an error.
        let r3 = tight_rect(0, 0, 4, 4, &cat(&[&[0x20], &compact(c2.len()), &c2]));
        let mut c = connected(4, 4, Config::default());
        assert!(c.handle_input(&fbu(&[r1, r3])).is_err());
    }

    #[test]
    fn tight_jpeg() {
        let (w, h) = (16u16, 8u16);
        let mut rgb = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&[if x < 8 { 200 } else { 20 }, 100, if y < 4 { 50 } else { 150 }]);
            }
        }
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 100).encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        let s = fbu(&[tight_rect(0, 0, w, h, &cat(&[&[0x90], &compact(jpeg.len()), &jpeg]))]);
        let cfg = Config { jpeg_quality: Some(9), ..Config::default() };
        let ev = events_both_ways(w, h, cfg, &s);
        let Event::Pixels { width, height, rgba, .. } = &ev[0] else { panic!("{ev:?}") };
        assert_eq!((*width, *height), (w, h));
        for (got, want) in rgba.chunks(4).zip(rgb.chunks(3)) {
            for ch in 0..3 {
                assert!(got[ch].abs_diff(want[ch]) <= 12, "{got:?} vs {want:?}");
            }
            assert_eq!(got[3], 255);
        }
        // Size mismatch is a JPEG error.
        let s = fbu(&[tight_rect(0, 0, 8, 8, &cat(&[&[0x90], &compact(jpeg.len()), &jpeg]))]);
        let mut c = connected(w, h, Config::default());
        assert!(matches!(c.handle_input(&s), Err(Error::Jpeg(_))));
        // Garbage JPEG.
        let s = fbu(&[tight_rect(0, 0, 8, 8, &[0x90, 3, 1, 2, 3])]);
        let mut c = connected(w, h, Config::default());
        assert!(matches!(c.handle_input(&s), Err(Error::Jpeg(_))));
    }

    #[test]
    fn pseudo_encodings() {
        // Cursor 2x2, hotspot (1,0): mask rows 0b10, 0b01.
        let px = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 0];
        let cursor = cat(&[&rect(1, 0, 2, 2, -239), &px, &[0x80, 0x40]]);
        let empty_cursor = rect(0, 0, 0, 0, -239);
        let ds = rect(0, 0, 20, 10, -223);
        let mut eds = rect(0, 0, 30, 40, -308);
        eds.extend_from_slice(&[1, 0, 0, 0]);
        eds.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 30, 0, 40, 0, 0, 0, 0]);
        let qemu = rect(0, 0, 0, 0, -258);
        // A rect at the new size is valid.
        let raw = cat(&[&rect(29, 39, 1, 1, 0), &[1, 1, 1, 1]]);
        let cfg = Config { use_qemu_key_events: true, ..Config::default() };
        let ev = events_both_ways(8, 8, cfg.clone(), &fbu(&[cursor, empty_cursor, ds, eds.clone(), qemu.clone(), raw]));
        assert_eq!(
            ev,
            [
                Event::Cursor {
                    hotspot_x: 1,
                    hotspot_y: 0,
                    width: 2,
                    height: 2,
                    rgba: vec![1, 2, 3, 255, 4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 255]
                },
                Event::Cursor { hotspot_x: 0, hotspot_y: 0, width: 0, height: 0, rgba: vec![] },
                Event::Resize { width: 20, height: 10 },
                Event::Resize { width: 30, height: 40 },
                Event::Pixels { x: 29, y: 39, width: 1, height: 1, rgba: vec![1, 1, 1, 255] },
                Event::UpdateEnd,
            ]
        );

        // ExtendedDesktopSize enables SetDesktopSize with the server's screen id.
        let mut c = connected(8, 8, cfg);
        assert!(!c.request_desktop_size(100, 100));
        c.handle_input(&fbu(&[eds, qemu])).unwrap();
        assert_eq!(c.size(), (30, 40));
        assert!(c.request_desktop_size(100, 50));
        assert_eq!(
            c.poll_transmit().unwrap(),
            [251, 0, 0, 100, 0, 50, 1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 100, 0, 50, 0, 0, 0, 0]
        );
        // A failed SetDesktopSize (status != 0) does not resize.
        let mut eds_fail = rect(1, 3, 100, 50, -308);
        eds_fail.extend_from_slice(&[0, 0, 0, 0]);
        c.handle_input(&fbu(&[eds_fail])).unwrap();
        assert_eq!(c.size(), (30, 40));
        // DesktopSize beyond the limits.
        assert!(matches!(c.handle_input(&fbu(&[rect(0, 0, 9000, 10, -223)])), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn last_rect_ends_update() {
        let px = [1, 2, 3, 0];
        let mut s = vec![0, 0, 0xff, 0xff];
        s.extend(cat(&[&rect(0, 0, 1, 1, 0), &px]));
        s.extend(rect(0, 0, 0, 0, -224));
        s.push(2); // Bell after the update.
        let ev = events_both_ways(4, 4, Config::default(), &s);
        assert_eq!(
            ev,
            [
                Event::Pixels { x: 0, y: 0, width: 1, height: 1, rgba: vec![1, 2, 3, 255] },
                Event::UpdateEnd,
                Event::Bell
            ]
        );
    }

    #[test]
    fn other_server_messages() {
        let mut s = vec![1, 0, 0, 0, 0, 2];
        s.extend_from_slice(&[0; 12]);
        s.push(2);
        s.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 3, b'h', 0xe9, b'!']);
        s.extend_from_slice(&[0, 0, 0, 0]); // empty update
        let ev = events_both_ways(4, 4, Config::default(), &s);
        assert_eq!(ev, [Event::Bell, Event::ServerCutText("hé!".into()), Event::UpdateEnd]);

        let mut c = connected(4, 4, Config::default());
        let e = c.handle_input(&[3, 0, 0, 0, 0xff, 0, 0, 0]).unwrap_err();
        assert!(matches!(e, Error::TooLarge { what: "cut text", .. }));
        let mut c = connected(4, 4, Config::default());
        assert!(matches!(c.handle_input(&[9]), Err(Error::Protocol(_))));
    }

    #[test]
    fn rect_outside_framebuffer() {
        for r in [
            cat(&[&rect(3, 0, 2, 1, 0), &[0; 8]]),
            rect(0, 4, 1, 1, 16),
            rect(65535, 0, 2, 1, 7),
            cat(&[&rect(0, 0, 2, 2, 1), &[3, 3, 0, 0]]),
        ] {
            let mut c = connected(4, 4, Config::default());
            let e = c.handle_input(&fbu(&[r])).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{e}");
        }
        let mut c = connected(4, 4, Config::default());
        assert!(matches!(c.handle_input(&fbu(&[rect(0, 0, 1, 1, 5)])), Err(Error::Protocol(_))));
    }

    #[test]
    fn zlib_bombs_are_rejected() {
        // 64 MB of zeros compresses to ~64 KB; the rect decodes to 4 pixels.
        let mut z = Deflater::new();
        let bomb = z.chunk(&vec![0u8; 64 * 1024 * 1024]);
        let s = fbu(&[cat(&[&rect(0, 0, 2, 2, 16), &(bomb.len() as u32).to_be_bytes(), &bomb])]);
        let mut c = connected(4, 4, Config::default());
        assert!(matches!(c.handle_input(&s), Err(Error::Decompress(_))));

        let s = fbu(&[tight_rect(0, 0, 2, 2, &cat(&[&[0x00], &compact(bomb.len()), &bomb]))]);
        let mut c = connected(4, 4, Config::default());
        assert!(matches!(c.handle_input(&s), Err(Error::Decompress(_))));

        // A tiny stream claiming a huge rect is refused before allocating.
        let mut z = Deflater::new();
        let small = z.chunk(&[0u8; 100]);
        let s = fbu(&[tight_rect(0, 0, 4000, 4000, &cat(&[&[0x00], &compact(small.len()), &small]))]);
        let mut c = connected(4000, 4000, Config::default());
        assert!(matches!(c.handle_input(&s), Err(Error::Decompress(_))));
    }

    #[test]
    fn message_size_limit() {
        let limits = Limits { max_message_bytes: 1000, ..Limits::default() };
        let cfg = Config { limits, ..Config::default() };
        let mut c = connected(100, 100, cfg.clone());
        let s = fbu(&[cat(&[&rect(0, 0, 1, 1, 16), &5000u32.to_be_bytes()])]);
        assert!(matches!(c.handle_input(&s), Err(Error::TooLarge { .. })));
        // Raw strips larger than the limit.
        let mut c = connected(100, 100, cfg);
        assert!(matches!(c.handle_input(&fbu(&[rect(0, 0, 100, 100, 0)])), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn client_messages() {
        let mut c = Client::new(Config { use_qemu_key_events: true, ..Config::default() });
        // Nothing is sent before ServerInit.
        c.send_key(true, 0x61, 0x1e);
        assert!(c.poll_transmit().is_none());
        c.handle_input(&handshake(640, 480)).unwrap();
        c.poll_transmit();

        c.send_key(true, 0x61, 0x1e);
        assert_eq!(c.poll_transmit().unwrap(), [4, 1, 0, 0, 0, 0, 0, 0x61]);
        c.send_pointer(300, 200, 0b101);
        assert_eq!(c.poll_transmit().unwrap(), [5, 5, 1, 44, 0, 200]);
        c.send_pointer(9999, 9999, 0);
        assert_eq!(c.poll_transmit().unwrap(), [5, 0, 2, 127, 1, 223]);
        c.send_cut_text("Aé€");
        assert_eq!(c.poll_transmit().unwrap(), [6, 0, 0, 0, 0, 0, 0, 3, b'A', 0xe9, b'?']);
        c.request_update(true);
        assert_eq!(c.poll_transmit().unwrap(), [3, 1, 0, 0, 0, 0, 2, 128, 1, 224]);

        // After the server acknowledges QEMU extended keys.
        c.handle_input(&fbu(&[rect(0, 0, 0, 0, -258)])).unwrap();
        c.send_key(false, 0xff52, 0xE048);
        assert_eq!(
            c.poll_transmit().unwrap(),
            [255, 0, 0, 0, 0, 0, 0xff, 0x52, 0, 0, 0, 0xc8]
        );
        c.send_key(true, 0x61, 0x1e);
        assert_eq!(c.poll_transmit().unwrap(), [255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
        // Unknown scancode: plain KeyEvent.
        c.send_key(true, 0x61, 0);
        assert_eq!(c.poll_transmit().unwrap(), [4, 1, 0, 0, 0, 0, 0, 0x61]);

        // Acknowledged but not enabled: plain KeyEvent.
        let mut c = connected(10, 10, Config::default());
        c.handle_input(&fbu(&[rect(0, 0, 0, 0, -258)])).unwrap();
        c.send_key(true, 0x61, 0x1e);
        assert_eq!(c.poll_transmit().unwrap(), [4, 1, 0, 0, 0, 0, 0, 0x61]);
    }

    #[test]
    fn random_streams_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut z = Deflater::new();
        let zchunk = z.chunk(&[1, 10, 20, 30]);
        // Prefixes that steer the random bytes into interesting states.
        let prefixes: Vec<Vec<u8>> = vec![
            vec![],
            fbu(&[]),
            vec![0, 0, 0, 3],
            cat(&[&[0, 0, 0, 2], &rect(0, 0, 8, 8, 16)]),
            cat(&[&[0, 0, 0, 2], &rect(0, 0, 8, 8, 7)]),
            cat(&[&[0, 0, 0, 2], &rect(0, 0, 3, 3, -239)]),
            cat(&[&[0, 0, 0, 2], &rect(0, 0, 8, 8, -308)]),
            cat(&[&[0, 0, 0, 2], &rect(0, 0, 1, 1, 16), &(zchunk.len() as u32).to_be_bytes(), &zchunk]),
        ];
        for i in 0..2000 {
            let len = (next() % 300) as usize;
            let mut data = prefixes[i % prefixes.len()].clone();
            data.extend((0..len).map(|_| next() as u8));
            // Sometimes force a plausible message type / tight control byte.
            if i % 3 == 0 && data.len() > 16 {
                let k = (next() % 16) as usize;
                data[k] = [0u8, 1, 2, 3, 0x80, 0x90, 0x40, 0x50][k % 8];
            }
            let cfg = Config { password: Some("x".into()), ..Config::default() };
            let mut c = Client::new(cfg);
            let mut stream = handshake(64, 48);
            stream.extend_from_slice(&data);
            for chunk in stream.chunks(1 + (next() % 64) as usize) {
                if c.handle_input(chunk).is_err() {
                    break;
                }
            }
            while c.poll_event().is_some() {}
            while c.poll_transmit().is_some() {}
            c.send_key(true, 1, 0xE048);
            c.send_pointer(1, 1, 1);
            c.request_update(true);
            let _ = c.request_desktop_size(10, 10);
        }
        // Random bytes from the very start of the handshake, with a password.
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let mut data = b"RFB 003.008\n".to_vec();
            data.extend((0..len).map(|_| next() as u8));
            let mut c = Client::new(Config { password: Some("x".into()), ..Config::default() });
            let _ = c.handle_input(&data);
            while c.poll_event().is_some() {}
            while c.poll_transmit().is_some() {}
        }
    }
}
