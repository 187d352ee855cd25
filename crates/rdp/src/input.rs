//! Translation of [`RdpInput`] key and pointer events into RDP input events.

use ironrdp_pdu::input::fast_path::{FastPathInputEvent, KeyboardFlags, SynchronizeFlags};
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::{InputEvent, MousePdu};

/// One notch of a wheel, as Windows counts it.
const WHEEL_DELTA: i16 = 120;

/// Keeps the last pointer state so that mask changes become button transitions.
#[derive(Debug, Default)]
pub(crate) struct InputState {
    buttons: u8,
    pos: Option<(u16, u16)>,
}

impl InputState {
    /// Key event (PC/XT set 1; 0xE0xx extended, 0xE1xx extended1), or a Unicode event when
    /// `scancode == 0`.
    pub(crate) fn key(&mut self, down: bool, scancode: u16, unicode: Option<char>, out: &mut Vec<FastPathInputEvent>) {
        if scancode == 0 {
            let Some(c) = unicode else { return };
            let flags = if down { KeyboardFlags::empty() } else { KeyboardFlags::RELEASE };
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push(FastPathInputEvent::UnicodeKeyboardEvent(flags, *unit));
            }
            return;
        }
        let [prefix, code] = scancode.to_be_bytes();
        let mut flags = if down { KeyboardFlags::empty() } else { KeyboardFlags::RELEASE };
        match prefix {
            0xE0 => flags |= KeyboardFlags::EXTENDED,
            0xE1 => flags |= KeyboardFlags::EXTENDED1,
            _ => {}
        }
        out.push(FastPathInputEvent::KeyboardEvent(flags, code));
    }

    /// Pointer event with an RFB-style mask, clamped to the desktop.
    pub(crate) fn pointer(
        &mut self,
        x: u16,
        y: u16,
        buttons: u8,
        size: (u16, u16),
        out: &mut Vec<FastPathInputEvent>,
    ) {
        let x = x.min(size.0.saturating_sub(1));
        let y = y.min(size.1.saturating_sub(1));
        let mouse = |flags: PointerFlags, wheel: i16| {
            FastPathInputEvent::MouseEvent(MousePdu {
                flags,
                number_of_wheel_rotation_units: wheel,
                x_position: x,
                y_position: y,
            })
        };

        if self.pos != Some((x, y)) {
            out.push(mouse(PointerFlags::MOVE, 0));
            self.pos = Some((x, y));
        }

        let changed = self.buttons ^ buttons;
        for (bit, flag) in [
            (0x01u8, PointerFlags::LEFT_BUTTON),
            (0x02, PointerFlags::MIDDLE_BUTTON_OR_WHEEL),
            (0x04, PointerFlags::RIGHT_BUTTON),
        ] {
            if changed & bit != 0 {
                let down = if buttons & bit != 0 { PointerFlags::DOWN } else { PointerFlags::empty() };
                out.push(mouse(flag | down, 0));
            }
        }
        // Every event that carries a wheel bit is one notch.
        for (bit, flag, delta) in [
            (0x08u8, PointerFlags::VERTICAL_WHEEL, WHEEL_DELTA),
            (0x10, PointerFlags::VERTICAL_WHEEL, -WHEEL_DELTA),
            (0x20, PointerFlags::HORIZONTAL_WHEEL, -WHEEL_DELTA),
            (0x40, PointerFlags::HORIZONTAL_WHEEL, WHEEL_DELTA),
        ] {
            if buttons & bit != 0 {
                out.push(mouse(flag, delta));
            }
        }
        self.buttons = buttons & 0x07;
    }

    /// Synchronize event: all toggle keys off (the browser side does not tell us).
    pub(crate) fn sync(out: &mut Vec<FastPathInputEvent>) {
        out.push(FastPathInputEvent::SyncEvent(SynchronizeFlags::empty()));
    }
}

/// Slow-path form of fast-path events, for servers without fast-path input.
pub(crate) fn to_slow_path(events: &[FastPathInputEvent]) -> Vec<InputEvent> {
    use ironrdp_pdu::input::scan_code::{KeyboardFlags as ScanFlags, ScanCodePdu};
    use ironrdp_pdu::input::unicode::{KeyboardFlags as UniFlags, UnicodePdu};
    events
        .iter()
        .filter_map(|e| match e {
            FastPathInputEvent::KeyboardEvent(f, code) => {
                let mut flags = ScanFlags::empty();
                if f.contains(KeyboardFlags::RELEASE) {
                    flags |= ScanFlags::RELEASE;
                } else {
                    flags |= ScanFlags::DOWN;
                }
                if f.contains(KeyboardFlags::EXTENDED) {
                    flags |= ScanFlags::EXTENDED;
                }
                if f.contains(KeyboardFlags::EXTENDED1) {
                    flags |= ScanFlags::EXTENDED_1;
                }
                Some(InputEvent::ScanCode(ScanCodePdu {
                    flags,
                    key_code: u16::from(*code),
                }))
            }
            FastPathInputEvent::UnicodeKeyboardEvent(f, unit) => Some(InputEvent::Unicode(UnicodePdu {
                flags: if f.contains(KeyboardFlags::RELEASE) { UniFlags::RELEASE } else { UniFlags::empty() },
                unicode_code: *unit,
            })),
            FastPathInputEvent::MouseEvent(m) => Some(InputEvent::Mouse(*m)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(e: &FastPathInputEvent) -> (PointerFlags, i16) {
        match e {
            FastPathInputEvent::MouseEvent(m) => (m.flags, m.number_of_wheel_rotation_units),
            other => panic!("not a mouse event: {other:?}"),
        }
    }

    #[test]
    fn pointer_transitions() {
        let mut s = InputState::default();
        let mut out = Vec::new();
        s.pointer(10, 10, 0, (100, 100), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(flags_of(&out[0]).0, PointerFlags::MOVE);
        out.clear();
        s.pointer(10, 10, 1, (100, 100), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(flags_of(&out[0]).0, PointerFlags::LEFT_BUTTON | PointerFlags::DOWN);
        out.clear();
        s.pointer(500, 10, 0, (100, 100), &mut out);
        assert_eq!(out.len(), 2);
        match &out[0] {
            FastPathInputEvent::MouseEvent(m) => assert_eq!(m.x_position, 99),
            _ => unreachable!(),
        }
        assert_eq!(flags_of(&out[1]).0, PointerFlags::LEFT_BUTTON);
        out.clear();
        s.pointer(99, 10, 0x10, (100, 100), &mut out);
        assert_eq!(flags_of(&out[0]), (PointerFlags::VERTICAL_WHEEL, -120));
        out.clear();
        s.pointer(99, 10, 0, (100, 100), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn keys() {
        let mut s = InputState::default();
        let mut out = Vec::new();
        s.key(true, 0xE04B, None, &mut out);
        s.key(false, 0x1E, None, &mut out);
        s.key(true, 0, Some('é'), &mut out);
        s.key(true, 0, Some('😀'), &mut out);
        s.key(true, 0, None, &mut out);
        assert_eq!(
            out,
            vec![
                FastPathInputEvent::KeyboardEvent(KeyboardFlags::EXTENDED, 0x4B),
                FastPathInputEvent::KeyboardEvent(KeyboardFlags::RELEASE, 0x1E),
                FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), 0xE9),
                FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), 0xD83D),
                FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), 0xDE00),
            ]
        );
    }
}
