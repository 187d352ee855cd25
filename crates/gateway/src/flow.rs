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

/// One viewer's flow state.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// Frames sent and not acknowledged: (sequence number, bytes, when sent).
    in_flight: VecDeque<(u32, usize, Instant)>,
    bytes_in_flight: usize,
    /// Recent acks: (when, bytes acknowledged).
    acked: VecDeque<(Instant, usize)>,
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
            if sent_seq == seq {
                rtt = Some(now.saturating_duration_since(at));
            }
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

    /// Bytes sent and not yet acknowledged.
    #[cfg(test)]
    fn bytes_in_flight(&self) -> usize {
        self.bytes_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
