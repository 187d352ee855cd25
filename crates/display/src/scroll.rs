//! Scroll detection: content that moved up or down inside a changed rectangle, found by hashing
//! rows of what the viewer has and of the framebuffer, and sent as one `Copy`.

use crate::cache::{TileKey, xxh64_pair};
use crate::framebuffer::Framebuffer;
use bascule_proto::Rect;
use std::collections::HashMap;

/// The fewest rows that must agree on a move.
const MIN_VOTES: usize = 8;

/// Finds content of `rect` that moved down or up between `before` (what the viewer has) and
/// `after` (the framebuffer), as the `Copy` that moves it: (source top, destination).
///
/// Among the rows of `after` that changed and are not one colour, those found, by hash,
/// elsewhere in `before` vote for their move; the move with the most votes wins when it has at
/// least a third of them (and [`MIN_VOTES`]). The copy spans the longest run of rows that the
/// move explains (a title bar above a scrolled text stays out of it).
pub(crate) fn find_scroll(before: &Framebuffer, after: &Framebuffer, rect: Rect) -> Option<(u16, Rect)> {
    // Both hashes of the pair (one pass): a row is known by 128 bits.
    let hash = |fb: &Framebuffer, y: u16| xxh64_pair(fb.row(rect.x, y, rect.width), TileKey::SEEDS);
    let plain = |fb: &Framebuffer, y: u16| {
        let row = fb.row(rect.x, y, rect.width);
        row.chunks_exact(4).all(|p| p == &row[..4])
    };
    let mut where_before: HashMap<[u64; 2], Vec<u16>> = HashMap::new();
    let mut before_hashes = Vec::with_capacity(usize::from(rect.height));
    for y in rect.y..rect.y + rect.height {
        let h = hash(before, y);
        before_hashes.push(h);
        if !plain(before, y) {
            let rows = where_before.entry(h).or_default();
            if rows.len() < 4 {
                rows.push(y);
            }
        }
    }
    let mut votes: HashMap<i32, usize> = HashMap::new();
    let mut changed = 0;
    let mut after_hashes = Vec::with_capacity(usize::from(rect.height));
    for (i, y) in (rect.y..rect.y + rect.height).enumerate() {
        let h = hash(after, y);
        after_hashes.push(h);
        if h == before_hashes[i] || plain(after, y) {
            continue;
        }
        changed += 1;
        for &from in where_before.get(&h).map(Vec::as_slice).unwrap_or_default() {
            *votes.entry(i32::from(y) - i32::from(from)).or_default() += 1;
        }
    }
    let (dy, count) = votes.into_iter().max_by_key(|&(dy, count)| (count, -dy.abs()))?;
    if count < MIN_VOTES || count * 3 < changed {
        return None;
    }
    // The destination rows the move explains: row i of `after` is row i - dy of `before`.
    let explained = |i: usize| {
        let from = i as i64 - i64::from(dy);
        from >= 0 && (from as usize) < before_hashes.len() && after_hashes[i] == before_hashes[from as usize]
    };
    // The longest run of rows the move explains: moving more would spoil rows around it.
    let (mut best, mut start) = ((0, 0), None);
    for i in 0..=after_hashes.len() {
        match (i < after_hashes.len() && explained(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                start = None;
            }
            _ => {}
        }
    }
    if best.1 - best.0 < MIN_VOTES {
        return None;
    }
    let (first, last) = (best.0, best.1 - 1);
    // INVARIANT: indices inside a rectangle of u16 height.
    let dst = Rect { y: rect.y + first as u16, height: (last - first + 1) as u16, ..rect };
    let src_y = (i64::from(dst.y) - i64::from(dy)) as u16;
    Some((src_y, dst))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A 100 x 80 framebuffer of distinct text-like rows, shifted by `dy` rows.
    fn page(dy: i32) -> Framebuffer {
        let mut rgba = Vec::new();
        for y in 0..80i32 {
            let line = y - dy;
            for x in 0..100i32 {
                let ink = (0..80).contains(&line) && (x * 7 + line * 13) % 11 == 0;
                let v = if ink { (line * 3) as u8 } else { 255 };
                rgba.extend_from_slice(&[v, v, v, 255]);
            }
        }
        Framebuffer::from_rgba(100, 80, rgba).unwrap()
    }

    #[test]
    fn finds_a_scroll_either_way_and_nothing_when_there_is_none() {
        let rect = Rect { x: 0, y: 0, width: 100, height: 80 };
        // Up by 17: rows 17.. of before are rows 0..63 of after.
        assert_eq!(find_scroll(&page(0), &page(-17), rect), Some((17, Rect { height: 63, ..rect })));
        assert_eq!(find_scroll(&page(0), &page(5), rect), Some((0, Rect { y: 5, height: 75, ..rect })));
        assert_eq!(find_scroll(&page(0), &page(0), rect), None);
        let noise: Vec<u8> = (0..100 * 80u32).flat_map(|i| [(i * 97) as u8, (i / 3) as u8, 7, 255]).collect();
        assert_eq!(find_scroll(&page(0), &Framebuffer::from_rgba(100, 80, noise).unwrap(), rect), None);
    }
}
