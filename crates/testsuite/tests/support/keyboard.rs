//! PC/XT set-1 scancodes of a US keyboard, for backends that send physical keys (RDP).

/// Left Shift.
pub(crate) const SHIFT: (u32, u16) = (0xffe1, 0x2a);
/// Left Control.
pub(crate) const CONTROL: (u32, u16) = (0xffe3, 0x1d);
/// Return.
pub(crate) const RETURN: (u32, u16) = (0xff0d, 0x1c);

/// The scancode of the key that makes `c` on a US layout, and whether Shift is needed.
pub(crate) fn us_scancode(c: char) -> Option<(u16, bool)> {
    const DIGITS: &[u8] = b"1234567890";
    const SHIFTED_DIGITS: &[u8] = b"!@#$%^&*()";
    const ROWS: [(&[u8], &[u8], u16); 3] = [
        (b"qwertyuiop[]", b"QWERTYUIOP{}", 0x10),
        (b"asdfghjkl;'", b"ASDFGHJKL:\"", 0x1e),
        (b"zxcvbnm,./", b"ZXCVBNM<>?", 0x2c),
    ];
    let byte = u8::try_from(u32::from(c)).ok()?;
    if let Some(i) = DIGITS.iter().position(|&b| b == byte) {
        return Some((0x02 + i as u16, false));
    }
    if let Some(i) = SHIFTED_DIGITS.iter().position(|&b| b == byte) {
        return Some((0x02 + i as u16, true));
    }
    for (plain, shifted, first) in ROWS {
        if let Some(i) = plain.iter().position(|&b| b == byte) {
            return Some((first + i as u16, false));
        }
        if let Some(i) = shifted.iter().position(|&b| b == byte) {
            return Some((first + i as u16, true));
        }
    }
    Some(match c {
        '`' => (0x29, false),
        '~' => (0x29, true),
        '-' => (0x0c, false),
        '_' => (0x0c, true),
        '=' => (0x0d, false),
        '+' => (0x0d, true),
        '\\' => (0x2b, false),
        '|' => (0x2b, true),
        ' ' => (0x39, false),
        '\n' => (0x1c, false),
        '\t' => (0x0f, false),
        _ => return None,
    })
}

/// Key events `(down, keysym, scancode)` that type `text` on a US layout, with Shift pressed
/// around shifted characters.
pub(crate) fn us_key_events(text: &str) -> Vec<(bool, u32, u16)> {
    let mut events = Vec::new();
    for c in text.chars() {
        let (scancode, shift) = us_scancode(c).unwrap_or_else(|| panic!("no US key for {c:?} in the test helper"));
        let keysym = match c {
            '\n' => RETURN.0,
            '\t' => 0xff09,
            c => u32::from(c),
        };
        if shift {
            events.push((true, SHIFT.0, SHIFT.1));
        }
        events.push((true, keysym, scancode));
        events.push((false, keysym, scancode));
        if shift {
            events.push((false, SHIFT.0, SHIFT.1));
        }
    }
    events
}

#[test]
fn the_us_table_knows_every_printable_character() {
    for c in ' '..='~' {
        assert!(us_scancode(c).is_some(), "{c:?}");
    }
    assert_eq!(us_scancode('a'), Some((0x1e, false)));
    assert_eq!(us_scancode('Q'), Some((0x10, true)));
    assert_eq!(us_scancode('$'), Some((0x05, true)));
    assert_eq!(us_scancode('/'), Some((0x35, false)));
    assert_eq!(us_scancode('"'), Some((0x28, true)));
    assert_eq!(us_key_events("A").len(), 4);
}
