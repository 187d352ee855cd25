//! Per-viewer flow control, sans-IO: how many bytes may be unacknowledged on the way to a browser.
//!
//! The window is what the link delivers in `TARGET_DELAY`, measured from the viewer's own acks
//! (the delivery rate between the first and the last ack of the last second). It never drops
//! below `MIN_WINDOW`, which alone fills a thin link. Frames are sent whole; while the window is
//! full, damage keeps coalescing in the display, so a slow link gets fewer, fuller frames instead
//! of a queue in socket buffers (which would only delay every later picture).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The smallest window: 32 KiB (a 512 kbit/s link with a 500 ms round trip).
pub(crate) const MIN_WINDOW: usize = 32 * 1024;

/// How far back the delivery rate looks.
const RATE_SPAN: Duration = Duration::from_secs(1);
/// The queueing a window may add on the link.
const TARGET_DELAY: Duration = Duration::from_millis(100);
/// How far back the bandwidth estimate looks.
const BANDWIDTH_SPAN: Duration = Duration::from_secs(10);
/// Frames smaller than this say little about the bandwidth (they fit in the pipe).
const BANDWIDTH_SAMPLE_BYTES: usize = 8 * 1024;

/// One viewer's flow state.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// Frames sent and not acknowledged: (sequence number, bytes, when sent).
    in_flight: VecDeque<(u32, usize, Instant)>,
    bytes_in_flight: usize,
    /// Recent acks: (when, bytes acknowledged).
    acked: VecDeque<(Instant, usize)>,
    /// The smallest round trip seen: the link's delay without queueing.
    min_rtt: Option<Duration>,
    /// Large frames, for the bandwidth: (when acknowledged, bytes, round trip). Their rate is
    /// worked out when asked, against the smallest round trip known then: a frame that came
    /// before any small one (the first screen) would otherwise be measured against itself.
    bandwidth: VecDeque<(Instant, usize, Duration)>,
    /// The best sample of the last window that had any: what the link is known to carry when
    /// nothing large was sent lately (typing only).
    known_bandwidth: Option<f64>,
}

impl Flow {
    /// A frame of `bytes` with sequence number `seq` was sent at `now`.
    pub(crate) fn on_send(&mut self, seq: u32, bytes: usize, now: Instant) {
        self.in_flight.push_back((seq, bytes, now));
        self.bytes_in_flight += bytes;
    }

    /// The browser acknowledged every frame up to `seq` (acks are cumulative). Returns the round
    /// trip of frame `seq` when it was in flight.
    pub(crate) fn on_ack(&mut self, seq: u32, now: Instant) -> Option<Duration> {
        let mut rtt = None;
        let mut bytes = 0;
        while let Some(&(sent_seq, sent_bytes, at)) = self.in_flight.front() {
            if sent_seq > seq {
                break;
            }
            self.in_flight.pop_front();
            self.bytes_in_flight -= sent_bytes;
            bytes += sent_bytes;
            let round_trip = now.saturating_duration_since(at);
            if sent_seq == seq {
                rtt = Some(round_trip);
                self.min_rtt = Some(self.min_rtt.map_or(round_trip, |m| m.min(round_trip)));
            }
            // A large frame took (round trip - bare delay) to cross: its bytes over that time
            // are a sample of the bandwidth (an underestimate when it queued behind another).
            if sent_bytes >= BANDWIDTH_SAMPLE_BYTES {
                self.bandwidth.push_back((now, sent_bytes, round_trip));
            }
        }
        if let Some(best) = self.recent_bandwidth() {
            self.known_bandwidth = Some(best);
        }
        while self.bandwidth.front().is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > BANDWIDTH_SPAN) {
            self.bandwidth.pop_front();
        }
        if bytes > 0 {
            self.acked.push_back((now, bytes));
        }
        while self.acked.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_SPAN) {
            self.acked.pop_front();
        }
        rtt
    }

    /// Bytes acknowledged per second between the first and the last ack of the last second;
    /// `None` until two acks at least 20 ms apart say it.
    fn delivery_rate(&self) -> Option<f64> {
        let (first, _) = *self.acked.front()?;
        let (last, _) = *self.acked.back()?;
        let span = last.saturating_duration_since(first);
        if span < Duration::from_millis(20) {
            return None;
        }
        let bytes: usize = self.acked.iter().skip(1).map(|(_, b)| b).sum();
        Some(bytes as f64 / span.as_secs_f64())
    }

    /// The window in bytes: what the link delivers in `TARGET_DELAY`, at least `MIN_WINDOW`.
    pub(crate) fn window(&self) -> usize {
        match self.delivery_rate() {
            Some(rate) => (rate * TARGET_DELAY.as_secs_f64()).max(MIN_WINDOW as f64) as usize,
            None => MIN_WINDOW,
        }
    }

    /// Whether another frame may go now: nothing is in flight, or less than the window is.
    pub(crate) fn may_send(&self) -> bool {
        self.in_flight.is_empty() || self.bytes_in_flight < self.window()
    }

    /// The link's bandwidth in bytes per second: the best sample of the last 10 s, from the
    /// frames large enough to fill the pipe, or the last such figure when nothing large was
    /// sent for longer; `None` before any.
    pub(crate) fn bandwidth(&self) -> Option<f64> {
        self.recent_bandwidth().or(self.known_bandwidth)
    }

    /// The best rate of the large frames of the last 10 s. A frame that crossed in less than
    /// 5 ms beyond the bare delay says nothing (a fast link, or the frame that set the bare
    /// delay itself).
    fn recent_bandwidth(&self) -> Option<f64> {
        let bare = self.min_rtt?;
        self.bandwidth
            .iter()
            .filter_map(|&(_, bytes, round_trip)| {
                let transfer = round_trip.saturating_sub(bare);
                (transfer >= Duration::from_millis(5)).then(|| bytes as f64 / transfer.as_secs_f64())
            })
            .reduce(f64::max)
    }

    /// The JPEG quality for photo-like regions on this link; `None` (everything lossless) on a
    /// fast link, or before the bandwidth is known.
    ///
    /// A full 1280 × 800 photo is about 1 MB lossless, 60-120 kB as JPEG: above 12 Mbit/s the
    /// lossless picture takes under a second, below it the JPEG shows the picture first and the
    /// refinement follows once it stops changing.
    pub(crate) fn jpeg_quality(&self) -> Option<u8> {
        let rate = self.bandwidth()?;
        Some(match rate {
            r if r >= 1_500_000.0 => return None,
            r if r >= 400_000.0 => 80,
            r if r >= 120_000.0 => 65,
            _ => 50,
        })
    }

    /// The bit rate (bits per second) for the viewer's next H.264 streams: about 60 % of the
    /// link, so that text and the cursor still get through while a video plays, between
    /// 100 kbit/s and 8 Mbit/s; 2 Mbit/s before the bandwidth is known.
    pub(crate) fn video_bitrate(&self) -> u32 {
        self.bandwidth().map_or(2_000_000, |rate| (rate * 8.0 * 0.6).clamp(100_000.0, 8_000_000.0) as u32)
    }

    /// How many 16-pixel cells a refinement may resend at once: about 100 ms of the link (at
    /// some 400 bytes a cell of a photo, lossless), so that fresh updates wait no longer than
    /// that behind it and refinement takes at most some 40 % of the link (one slice every
    /// 250 ms); everything at once before the bandwidth is known.
    pub(crate) fn refine_cells(&self) -> usize {
        self.bandwidth().map_or(usize::MAX, |rate| ((rate * 0.1 / 400.0) as usize).max(16))
    }

    /// Bytes sent and not yet acknowledged.
    #[cfg(test)]
    fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_follows_the_bandwidth_of_large_frames() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut flow = Flow::default();
        assert_eq!(flow.jpeg_quality(), None, "unknown link: lossless");
        assert_eq!(flow.video_bitrate(), 2_000_000);
        assert_eq!(flow.refine_cells(), usize::MAX);
        // A small frame gives the bare round trip (80 ms) and no bandwidth.
        flow.on_send(1, 500, at(0));
        flow.on_ack(1, at(80));
        assert_eq!(flow.bandwidth(), None);
        // 64 kB in 1 s + 80 ms: a 512 kbit/s link.
        flow.on_send(2, 64_000, at(100));
        flow.on_ack(2, at(1180));
        let rate = flow.bandwidth().expect("a sample");
        assert!((rate - 64_000.0).abs() < 1.0, "{rate}");
        assert_eq!(flow.jpeg_quality(), Some(50));
        assert_eq!(flow.refine_cells(), 16, "100 ms of a 512 kbit/s link");
        assert_eq!(flow.video_bitrate(), 307_200, "60 % of 512 kbit/s");
        // 100 kB in 85 ms: a LAN; the best recent sample wins.
        flow.on_send(3, 100_000, at(2000));
        flow.on_ack(3, at(2085));
        assert_eq!(flow.jpeg_quality(), None);
        // Ten seconds later only the slow samples remain.
        flow.on_send(4, 64_000, at(12_100));
        flow.on_ack(4, at(13_180));
        assert_eq!(flow.jpeg_quality(), Some(50));
        // A minute of small frames (typing): the link is still known.
        flow.on_send(5, 300, at(73_000));
        flow.on_ack(5, at(73_080));
        assert_eq!(flow.jpeg_quality(), Some(50), "the last known bandwidth");
    }

    #[test]
    fn the_first_screen_is_measured_against_the_bare_delay_seen_later() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut flow = Flow::default();
        // The first screen, 14 kB, is the first frame: its round trip is the only one known.
        flow.on_send(1, 14_000, at(0));
        flow.on_ack(1, at(300));
        assert_eq!(flow.bandwidth(), None, "measured against itself, it would look infinitely fast");
        assert_eq!(flow.jpeg_quality(), None);
        // A keystroke's echo shows the bare delay: the first screen took 220 ms to cross.
        flow.on_send(2, 300, at(1000));
        flow.on_ack(2, at(1080));
        let rate = flow.bandwidth().expect("a rate");
        assert!((rate - 14_000.0 / 0.22).abs() < 1.0, "{rate}");
        assert_eq!(flow.jpeg_quality(), Some(50), "a 512 kbit/s link");
    }

    /// A link of `rate` bytes/s and `rtt`, and a viewer sending `frame`-byte frames whenever
    /// `Flow` allows: returns (frames sent in `span`, the most bytes ever in flight).
    fn simulate(rate: f64, rtt: Duration, frame: usize, span: Duration) -> (u32, usize) {
        let start = Instant::now();
        let mut flow = Flow::default();
        let mut now = start;
        let mut link_free = start; // when the link finishes serialising what it has
        let mut acks: VecDeque<(Instant, u32)> = VecDeque::new();
        let (mut seq, mut sent, mut peak) = (0u32, 0u32, 0usize);
        let step = Duration::from_millis(1);
        while now < start + span {
            while acks.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, acked)) = acks.pop_front() {
                    flow.on_ack(acked, now);
                }
            }
            if flow.may_send() {
                seq += 1;
                sent += 1;
                flow.on_send(seq, frame, now);
                peak = peak.max(flow.bytes_in_flight());
                let begin = link_free.max(now);
                link_free = begin + Duration::from_secs_f64(frame as f64 / rate);
                acks.push_back((link_free + rtt, seq));
            }
            now += step;
        }
        (sent, peak)
    }

    #[test]
    fn a_thin_link_holds_about_one_window_in_flight() {
        // 512 kbit/s, 80 ms: 100 KB frames (a photo) go one at a time, not queued.
        let (sent, peak) = simulate(64_000.0, Duration::from_millis(80), 100_000, Duration::from_secs(10));
        assert!(peak <= 100_000 + MIN_WINDOW, "at most one big frame and a window in flight: {peak}");
        assert!((5..=7).contains(&sent), "the link is kept busy, about 6.4 frames in 10 s: {sent}");
        // Small frames (typing) flow freely within the minimum window.
        let (sent, peak) = simulate(64_000.0, Duration::from_millis(80), 600, Duration::from_secs(1));
        assert!(sent > 40, "typing is not throttled: {sent}");
        assert!(peak <= MIN_WINDOW + 600, "{peak}");
    }

    #[test]
    fn a_fast_link_opens_the_window_beyond_the_minimum() {
        // 100 Mbit/s, 20 ms: the bandwidth-delay product is 250 KB, so 50 KB frames keep
        // several in flight and the link near full.
        let (sent, peak) = simulate(12_500_000.0, Duration::from_millis(20), 50_000, Duration::from_secs(2));
        assert!(peak > MIN_WINDOW * 2, "the window opened: {peak}");
        assert!(sent as f64 * 50_000.0 >= 0.8 * 12_500_000.0 * 2.0, "the link is used: {sent} frames");
    }

    #[test]
    fn acks_are_cumulative_and_round_trips_are_measured() {
        let t0 = Instant::now();
        let mut flow = Flow::default();
        flow.on_send(1, 1000, t0);
        flow.on_send(2, 2000, t0 + Duration::from_millis(10));
        assert_eq!(flow.bytes_in_flight(), 3000);
        assert_eq!(flow.on_ack(2, t0 + Duration::from_millis(90)), Some(Duration::from_millis(80)));
        assert_eq!(flow.bytes_in_flight(), 0);
        assert!(flow.may_send());
        assert_eq!(flow.on_ack(2, t0 + Duration::from_millis(95)), None, "a repeated ack changes nothing");
    }
}
