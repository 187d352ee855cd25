//! What the workload shows: the paragraph typed, the long document scrolled, the table in the
//! second window, and a photo-like picture. Deterministic, so that every run and every system
//! sees the same pixels.

/// The paragraph typed in the xterm at human speed: short lines (each well within the xterm's
/// 100 columns), each ended by Return, plain ASCII (no key needs a modifier but Shift).
pub const PARAGRAPH: &str = "Dear team, the branch office link is slow today.\n\
Please keep the weekly report short and send it by noon.\n";

/// A deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed (zero is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "account",
    "agenda",
    "archive",
    "budget",
    "client",
    "contract",
    "deadline",
    "delivery",
    "draft",
    "estimate",
    "figures",
    "forecast",
    "invoice",
    "ledger",
    "meeting",
    "minutes",
    "network",
    "office",
    "order",
    "payment",
    "planning",
    "policy",
    "printer",
    "project",
    "quarter",
    "receipt",
    "record",
    "report",
    "review",
    "schedule",
    "server",
    "service",
    "signature",
    "spreadsheet",
    "staff",
    "stock",
    "summary",
    "supplier",
    "target",
    "ticket",
    "training",
    "update",
    "version",
    "warehouse",
];

/// A long text document (numbered lines of office prose) for `less`: `lines` lines of up to
/// about 90 characters.
pub fn document(lines: usize) -> String {
    let mut rng = Rng::new(0x00d0_c0de);
    let mut text = String::new();
    for n in 1..=lines {
        if n % 24 == 1 {
            text.push_str(&format!("{n:04}  == Section {} ==\n", n / 24 + 1));
            continue;
        }
        let mut line = format!("{n:04}  ");
        let mut first = true;
        while line.len() < 60 + rng.below(28) as usize {
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            if first {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    line.push(c.to_ascii_uppercase());
                    line.push_str(chars.as_str());
                }
                first = false;
            } else {
                line.push(' ');
                line.push_str(word);
            }
        }
        line.push_str(".\n");
        text.push_str(&line);
    }
    text
}

/// A table (the second window's content): an order list with amounts.
pub fn table(rows: usize) -> String {
    let mut rng = Rng::new(0x7ab1e);
    let mut text = String::from("ORDER   CLIENT        ITEM           QTY      AMOUNT  STATUS\n");
    text.push_str(&"-".repeat(64));
    text.push('\n');
    for n in 0..rows {
        let client = WORDS[rng.below(WORDS.len() as u64) as usize];
        let item = WORDS[rng.below(WORDS.len() as u64) as usize];
        let qty = 1 + rng.below(400);
        let cents = rng.below(5_000_000);
        let status = ["open", "shipped", "paid", "late"][rng.below(4) as usize];
        text.push_str(&format!(
            "{:06}  {client:<12}  {item:<12}  {qty:>4}  {:>7}.{:02}  {status}\n",
            40_000 + n,
            cents / 100,
            cents % 100
        ));
    }
    text
}

/// A photo-like RGB picture: a sky gradient, hills with sine ridges, a sun, soft shading and
/// per-pixel sensor noise (so that, like a real photo, no codec finds long runs or flat areas).
pub fn photo_rgb(width: u32, height: u32) -> Vec<u8> {
    let mut rng = Rng::new(0x9407_0000);
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let (w, h) = (f64::from(width), f64::from(height));
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (f64::from(x) / w, f64::from(y) / h);
            let ridge = 0.55 + 0.08 * (fx * 9.0).sin() + 0.04 * (fx * 23.0 + 1.3).sin();
            let far_ridge = 0.45 + 0.06 * (fx * 5.0 + 2.0).sin();
            let sun = ((fx - 0.75).powi(2) + (fy - 0.22).powi(2)).sqrt();
            let mut colour = if fy > ridge {
                // Near hills: green, darker further down, with field stripes.
                let depth = (fy - ridge) / (1.0 - ridge + 1e-9);
                let stripes = 0.08 * ((fx * 40.0 + fy * 90.0).sin());
                [
                    40.0 + 50.0 * depth,
                    110.0 - 40.0 * depth + 60.0 * stripes,
                    35.0 + 10.0 * depth,
                ]
            } else if fy > far_ridge {
                // Far hills: bluish green haze.
                [85.0, 120.0 + 20.0 * fx, 120.0]
            } else if sun < 0.06 {
                [255.0, 240.0, 200.0]
            } else {
                // Sky: a vertical gradient, warmer towards the sun.
                let glow = (0.35 - sun).max(0.0) * 200.0;
                [
                    90.0 + 80.0 * fy + glow,
                    140.0 + 60.0 * fy + glow * 0.7,
                    230.0 - 20.0 * fy,
                ]
            };
            // Vignetting and noise.
            let vignette = 1.0 - 0.25 * ((fx - 0.5).powi(2) + (fy - 0.5).powi(2));
            for c in &mut colour {
                let noise = rng.below(25) as f64 - 12.0;
                *c = (*c * vignette + noise).clamp(0.0, 255.0);
            }
            rgb.extend(colour.map(|c| c as u8));
        }
    }
    rgb
}

/// `photo_rgb` as a PNG file's bytes.
pub fn photo_png(width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&photo_rgb(width, height))?;
    writer.finish()?;
    Ok(out)
}

/// The frames of a video: a camera panning across a photo-like scene, 4 pixels a frame, as PNG
/// files' bytes (`count` frames of `width × height`).
pub fn video_pngs(width: u32, height: u32, count: u32) -> Result<Vec<Vec<u8>>, png::EncodingError> {
    const STEP: u32 = 4;
    let scene_width = width + STEP * count;
    let scene = photo_rgb(scene_width, height);
    (0..count)
        .map(|t| {
            let mut rgb = Vec::with_capacity((width * height * 3) as usize);
            for row in 0..height {
                let start = ((row * scene_width + t * STEP) * 3) as usize;
                rgb.extend_from_slice(&scene[start..start + (width * 3) as usize]);
            }
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&rgb)?;
            writer.finish()?;
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_deterministic_and_fits_the_terminal() {
        assert_eq!(document(50), document(50));
        assert_eq!(document(300).lines().count(), 300);
        assert!(document(300).lines().all(|l| l.len() < 100));
        assert!(table(40).lines().all(|l| l.len() < 90));
        assert!(PARAGRAPH.lines().all(|l| l.len() < 90 && l.is_ascii()));
        assert!(PARAGRAPH.ends_with('\n'));
        let photo = photo_rgb(64, 48);
        assert_eq!(photo.len(), 64 * 48 * 3);
        assert_eq!(photo, photo_rgb(64, 48));
        // Photo-like: hardly two neighbours alike.
        let same = photo
            .chunks_exact(3)
            .zip(photo.chunks_exact(3).skip(1))
            .filter(|(a, b)| a == b)
            .count();
        assert!(same < 64 * 48 / 50, "{same} equal neighbours");
    }

    #[test]
    fn the_video_pans_four_pixels_a_frame() {
        let frames = video_pngs(32, 8, 3).expect("encoded");
        let decode = |png: &[u8]| {
            let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG");
            let mut rgb = vec![0; reader.output_buffer_size().expect("size")];
            let info = reader.next_frame(&mut rgb).expect("a frame");
            assert_eq!((info.width, info.height), (32, 8));
            rgb
        };
        let (first, second) = (decode(&frames[0]), decode(&frames[1]));
        assert_ne!(first, second);
        for row in 0..8 {
            let line = |rgb: &[u8], from: usize, len: usize| rgb[(row * 32 + from) * 3..(row * 32 + from + len) * 3].to_vec();
            assert_eq!(line(&first, 4, 28), line(&second, 0, 28), "row {row}");
        }
    }
}
