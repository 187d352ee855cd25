//! The sans-IO model of one direction of a thin link: a bounded queue in front of a FIFO
//! serialiser, then a fixed propagation delay.
//!
//! No socket, no runtime and no clock: every call that depends on time takes `now`.
//! A shell reads the clock, feeds what it read with [`Direction::offer`], writes out what
//! [`Direction::poll_deliverable`] gives, and sleeps until [`Direction::next_wakeup`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Offered bytes are cut into segments of at most this many bytes (a TCP MSS on Ethernet), so
/// that a big write leaves the link a segment at a time, as it would on a real wire.
pub const SEGMENT_BYTES: usize = 1460;

/// Delays longer than this are clamped to it, so that time arithmetic cannot overflow.
pub const MAX_ONE_WAY_DELAY: Duration = Duration::from_secs(3600);

/// The queue a link gets from [`LinkParams::from_rtt`] when its rate is unlimited.
const UNLIMITED_QUEUE_BYTES: usize = 1024 * 1024;
/// The smallest queue [`LinkParams::from_rtt`] gives.
const MIN_QUEUE_BYTES: usize = 16 * 1024;
/// How much queueing time, at the link's rate, [`LinkParams::from_rtt`] allows on top of the
/// bytes in flight.
const QUEUE_TIME: Duration = Duration::from_millis(250);

/// The shape of one direction of an emulated link.
///
/// The rate applies to payload bytes: TCP/IP headers of the emulated link are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    /// Serialisation rate in bits per second; `0` means unlimited (no serialisation time).
    pub rate_bps: u64,
    /// Propagation delay, added after a segment has been serialised.
    pub one_way_delay: Duration,
    /// How many accepted bytes, not yet delivered, the direction holds before it refuses more.
    ///
    /// This is the backpressure: a relay stops reading from the sender while the queue is full.
    /// Bytes in flight (serialised, waiting out the delay) count, so a limit below
    /// `rate_bps / 8 × one_way_delay` keeps the link from reaching its rate.
    /// A limit of `0` is treated as `1`.
    pub queue_limit_bytes: usize,
}

impl LinkParams {
    /// A link of `rate_kbps` kilobits (1000 bits) per second each way and a round-trip time of
    /// `rtt_ms` milliseconds, split evenly: the one-way delay is `rtt_ms / 2`.
    ///
    /// The queue holds the bytes in flight plus 250 ms of traffic at the rate, at least 16 KiB;
    /// 1 MiB when the rate is unlimited (`rate_kbps == 0`).
    pub fn from_rtt(rate_kbps: u64, rtt_ms: u64) -> LinkParams {
        let rate_bps = rate_kbps.saturating_mul(1000);
        let one_way_delay = Duration::from_millis(rtt_ms) / 2;
        let queue_limit_bytes = if rate_bps == 0 {
            UNLIMITED_QUEUE_BYTES
        } else {
            let bytes = bytes_in(rate_bps, one_way_delay.saturating_add(QUEUE_TIME));
            usize::try_from(bytes)
                .unwrap_or(usize::MAX)
                .max(MIN_QUEUE_BYTES)
        };
        LinkParams {
            rate_bps,
            one_way_delay,
            queue_limit_bytes,
        }
    }

    /// No rate limit and no delay: a plain relay that still counts bytes.
    pub fn unlimited() -> LinkParams {
        LinkParams::from_rtt(0, 0)
    }

    /// The same link with another queue limit.
    pub fn with_queue_limit(self, queue_limit_bytes: usize) -> LinkParams {
        LinkParams {
            queue_limit_bytes,
            ..self
        }
    }

    /// How long `len` bytes take to serialise at the rate, rounded up to the nanosecond
    /// (zero when the rate is unlimited).
    pub fn serialisation_time(&self, len: usize) -> Duration {
        if self.rate_bps == 0 {
            return Duration::ZERO;
        }
        // u128: 2^64 bytes × 8 × 10^9 still fits.
        let bits = u128::try_from(len).unwrap_or(u128::MAX) * 8;
        let nanos = (bits * 1_000_000_000).div_ceil(u128::from(self.rate_bps));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// How many whole bytes `rate_bps` carries in `time`.
fn bytes_in(rate_bps: u64, time: Duration) -> u64 {
    let bytes = u128::from(rate_bps) * time.as_nanos() / 8 / 1_000_000_000;
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// `instant + duration`, which cannot overflow for the durations a [`Direction`] adds (delays
/// are clamped to [`MAX_ONE_WAY_DELAY`]); if it ever did, the bytes are delivered at `instant`.
fn later(instant: Instant, duration: Duration) -> Instant {
    instant.checked_add(duration).unwrap_or(instant)
}

/// One segment in the pipe: `len` bytes at the head of [`Direction::bytes`] after the segments
/// before it, due at the far end at `deliver_at`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    deliver_at: Instant,
    len: usize,
}

/// One direction of an emulated link: bytes go in with [`offer`](Direction::offer) and come out,
/// in order and intact, with [`poll_deliverable`](Direction::poll_deliverable) once the link has
/// carried them.
///
/// The model is a FIFO serialiser: each segment starts transmitting when the previous one has
/// finished, or when it was offered if the link was idle; it takes `len × 8 / rate_bps` seconds,
/// then reaches the far end `one_way_delay` later.
/// Nothing is ever dropped: when the queue is full, `offer` accepts less (backpressure).
///
/// Calls should pass non-decreasing `now`s; an earlier `now` is harmless but delivers nothing
/// new.
#[derive(Debug, Clone)]
pub struct Direction {
    params: LinkParams,
    /// Accepted bytes not yet delivered, in order.
    bytes: VecDeque<u8>,
    /// How `bytes` is cut into segments, with their delivery times (non-decreasing).
    segments: VecDeque<Segment>,
    /// When the serialiser finishes the last segment it was given.
    serialiser_free_at: Option<Instant>,
    bytes_in: u64,
    bytes_delivered: u64,
}

impl Direction {
    /// An idle, empty direction.
    pub fn new(params: LinkParams) -> Direction {
        let params = LinkParams {
            one_way_delay: params.one_way_delay.min(MAX_ONE_WAY_DELAY),
            queue_limit_bytes: params.queue_limit_bytes.max(1),
            ..params
        };
        Direction {
            params,
            bytes: VecDeque::new(),
            segments: VecDeque::new(),
            serialiser_free_at: None,
            bytes_in: 0,
            bytes_delivered: 0,
        }
    }

    /// The parameters in force (the delay and queue limit as clamped by [`Direction::new`]).
    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Accepts up to [`room`](Direction::room) bytes from the start of `bytes`, received at
    /// `now`, and returns how many it took.
    pub fn offer(&mut self, now: Instant, bytes: &[u8]) -> usize {
        let accepted = bytes.len().min(self.room());
        for chunk in bytes[..accepted].chunks(SEGMENT_BYTES) {
            let start = match self.serialiser_free_at {
                Some(free_at) if free_at > now => free_at,
                _ => now,
            };
            let finish = later(start, self.params.serialisation_time(chunk.len()));
            self.serialiser_free_at = Some(finish);
            let deliver_at = later(finish, self.params.one_way_delay);
            self.segments.push_back(Segment {
                deliver_at,
                len: chunk.len(),
            });
            self.bytes.extend(chunk);
        }
        self.bytes_in += accepted as u64;
        accepted
    }

    /// The bytes that have reached the far end by `now` (serialised, and the delay elapsed), in
    /// order; `None` if there are none.
    pub fn poll_deliverable(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut len = 0;
        while let Some(segment) = self.segments.front() {
            if segment.deliver_at > now {
                break;
            }
            len += segment.len;
            self.segments.pop_front();
        }
        if len == 0 {
            return None;
        }
        self.bytes_delivered += len as u64;
        Some(self.bytes.drain(..len).collect())
    }

    /// When the next bytes reach the far end; `None` when the direction is empty.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.segments.front().map(|segment| segment.deliver_at)
    }

    /// How many more bytes [`offer`](Direction::offer) would accept now.
    pub fn room(&self) -> usize {
        self.params
            .queue_limit_bytes
            .saturating_sub(self.bytes.len())
    }

    /// How many accepted bytes are not yet delivered.
    pub fn queued(&self) -> usize {
        self.bytes.len()
    }

    /// Whether every accepted byte has been delivered.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many bytes [`offer`](Direction::offer) has accepted, in all.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// How many bytes [`poll_deliverable`](Direction::poll_deliverable) has given out, in all.
    pub fn bytes_delivered(&self) -> u64 {
        self.bytes_delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random generator (xorshift64*), so that every run is the same.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Links that the properties are checked on: thin, broadband, unlimited, with and without
    /// delay, with small and large queues.
    fn links() -> Vec<LinkParams> {
        vec![
            LinkParams::from_rtt(512, 80),
            LinkParams::from_rtt(64, 600),
            LinkParams::from_rtt(2_000, 0),
            LinkParams::from_rtt(10_000, 20).with_queue_limit(64 * 1024),
            LinkParams::from_rtt(1_000, 100).with_queue_limit(3_000),
            LinkParams {
                rate_bps: 300_001,
                one_way_delay: Duration::from_micros(12_345),
                queue_limit_bytes: 7_777,
            },
            LinkParams::from_rtt(0, 50),
        ]
    }

    /// What a simulation saw: every delivery with its time, and everything sent and received.
    struct Run {
        deliveries: Vec<(Instant, usize)>,
        sent: Vec<u8>,
        received: Vec<u8>,
    }

    /// Drives `link` for `duration` of virtual time in steps of up to `max_step`, offering
    /// random writes of up to `max_write` bytes whenever there is room (a greedy sender) and
    /// polling at random moments as well as at each wakeup.
    fn simulate(
        params: LinkParams,
        seed: u64,
        duration: Duration,
        max_step: Duration,
        max_write: usize,
    ) -> Run {
        let mut rng = Rng(seed);
        let mut link = Direction::new(params);
        let start = Instant::now();
        let mut now = start;
        let mut run = Run {
            deliveries: Vec::new(),
            sent: Vec::new(),
            received: Vec::new(),
        };
        while now < start + duration {
            if link.room() > 0 {
                let len = 1 + rng.below(max_write as u64) as usize;
                let write = rng.bytes(len);
                let accepted = link.offer(now, &write);
                assert_eq!(accepted, write.len().min(link.room() + accepted));
                run.sent.extend(&write[..accepted]);
            }
            let step = Duration::from_nanos(1 + rng.below(max_step.as_nanos() as u64));
            let mut next = now + step;
            if let Some(wakeup) = link.next_wakeup() {
                assert!(
                    wakeup > now,
                    "the wakeup must be in the future after a poll"
                );
                next = next.min(wakeup);
            }
            now = next;
            if let Some(bytes) = link.poll_deliverable(now) {
                assert!(!bytes.is_empty());
                run.deliveries.push((now, bytes.len()));
                run.received.extend(bytes);
            }
        }
        assert_eq!(link.bytes_in(), run.sent.len() as u64);
        assert_eq!(link.bytes_delivered(), run.received.len() as u64);
        assert_eq!(
            link.queued() as u64,
            link.bytes_in() - link.bytes_delivered()
        );
        run
    }

    #[test]
    fn from_rtt_splits_the_rtt_and_sizes_the_queue() {
        let link = LinkParams::from_rtt(512, 80);
        assert_eq!(link.rate_bps, 512_000);
        assert_eq!(link.one_way_delay, ms(40));
        // 512 kbit/s × (40 + 250) ms = 18 560 bytes.
        assert_eq!(link.queue_limit_bytes, 18_560);
        assert_eq!(
            LinkParams::from_rtt(8, 10).queue_limit_bytes,
            MIN_QUEUE_BYTES
        );
        assert_eq!(
            LinkParams::unlimited().queue_limit_bytes,
            UNLIMITED_QUEUE_BYTES
        );
        assert_eq!(LinkParams::unlimited().one_way_delay, Duration::ZERO);
    }

    #[test]
    fn serialisation_time_rounds_up() {
        let link = LinkParams::from_rtt(512, 80);
        assert_eq!(
            link.serialisation_time(1460),
            Duration::from_nanos(22_812_500)
        );
        assert_eq!(link.serialisation_time(1), Duration::from_nanos(15_625));
        let odd = LinkParams {
            rate_bps: 3,
            ..link
        };
        assert_eq!(
            odd.serialisation_time(1),
            Duration::from_nanos(2_666_666_667)
        );
        assert_eq!(
            LinkParams::unlimited().serialisation_time(1 << 20),
            Duration::ZERO
        );
    }

    /// Over any window of at least 100 ms, the link delivers at most `rate × window` plus one
    /// segment (the one whose serialisation straddles the window's start), and a greedy sender
    /// gets close to the rate.
    #[test]
    fn throughput_never_exceeds_the_rate() {
        for (i, params) in links().into_iter().enumerate() {
            if params.rate_bps == 0 {
                continue;
            }
            let duration = Duration::from_secs(4);
            let run = simulate(params, 0x5eed + i as u64, duration, ms(3), 5_000);
            for window in [ms(100), ms(250), ms(1000)] {
                let limit = bytes_in(params.rate_bps, window) as usize + SEGMENT_BYTES;
                // The busiest window starts at a delivery: slide one from each delivery.
                let mut end = 0;
                let mut in_window = 0;
                for &(start_time, start_len) in &run.deliveries {
                    while end < run.deliveries.len() && run.deliveries[end].0 <= start_time + window
                    {
                        in_window += run.deliveries[end].1;
                        end += 1;
                    }
                    assert!(
                        in_window <= limit,
                        "{params:?}: {in_window} bytes delivered within {window:?} (limit {limit})"
                    );
                    in_window -= start_len;
                }
            }
            // When the queue holds more than the bytes in flight, a greedy sender keeps the
            // serialiser busy: all but the first delay's worth of the run is at full rate,
            // less one segment and the tail the last step may have cut.
            let in_flight = bytes_in(params.rate_bps, params.one_way_delay) as usize;
            if params.queue_limit_bytes < in_flight + 2 * SEGMENT_BYTES {
                continue;
            }
            let busy = duration - params.one_way_delay - ms(3);
            let floor = bytes_in(params.rate_bps, busy) as usize - 2 * SEGMENT_BYTES;
            assert!(
                run.received.len() >= floor,
                "{params:?}: only {} bytes delivered, expected at least {floor}",
                run.received.len()
            );
        }
    }

    /// On an idle link, a small write arrives after exactly the delay plus its serialisation
    /// time, also when the link was busy a while before.
    #[test]
    fn a_small_write_on_an_idle_link_takes_the_delay_plus_serialisation() {
        for params in links() {
            for len in [1, 7, 100, SEGMENT_BYTES] {
                let mut link = Direction::new(params);
                let t0 = Instant::now();
                // Keep the link busy first, then let it drain and sit idle for a second.
                let busy = vec![0xAA; params.queue_limit_bytes.min(10_000)];
                assert_eq!(link.offer(t0, &busy), busy.len());
                let mut now = t0;
                while let Some(wakeup) = link.next_wakeup() {
                    now = wakeup;
                    link.poll_deliverable(now);
                }
                let sent_at = now + ms(1000);
                let ping = vec![0x55; len];
                assert_eq!(link.offer(sent_at, &ping), len);
                let expected = params.one_way_delay + params.serialisation_time(len);
                assert_eq!(
                    link.next_wakeup(),
                    Some(sent_at + expected),
                    "{params:?}, {len} bytes"
                );
                assert_eq!(
                    link.poll_deliverable(sent_at + expected - Duration::from_nanos(1)),
                    None
                );
                assert_eq!(link.poll_deliverable(sent_at + expected), Some(ping));
                assert!(link.is_empty());
                assert_eq!(link.next_wakeup(), None);
            }
        }
    }

    /// Whatever the timing of writes and polls, the bytes come out in order, each exactly once.
    #[test]
    fn bytes_arrive_in_order_without_loss_or_duplication() {
        for (i, params) in links().into_iter().enumerate() {
            for seed in 0..4 {
                let run = simulate(params, 1 + seed * 1000 + i as u64, ms(1500), ms(20), 3_000);
                assert!(!run.received.is_empty(), "{params:?}: nothing delivered");
                assert!(run.received.len() <= run.sent.len());
                assert_eq!(run.received, run.sent[..run.received.len()], "{params:?}");
            }
        }
    }

    /// Everything offered is delivered in the end, in order, and the link ends empty.
    #[test]
    fn a_link_drains_completely() {
        let mut rng = Rng(42);
        let params = LinkParams::from_rtt(512, 80);
        let mut link = Direction::new(params);
        let data = rng.bytes(params.queue_limit_bytes);
        let t0 = Instant::now();
        assert_eq!(link.offer(t0, &data), data.len());
        let mut received = Vec::new();
        let mut last = t0;
        while let Some(wakeup) = link.next_wakeup() {
            received.extend(link.poll_deliverable(wakeup).unwrap_or_default());
            last = wakeup;
        }
        assert_eq!(received, data);
        // One busy serialiser: the last byte is due after the whole serialisation plus the delay.
        let total = params.serialisation_time(data.len()) + params.one_way_delay;
        let error = (last - t0).abs_diff(total);
        assert!(
            error < Duration::from_micros(1),
            "{:?} vs {total:?}",
            last - t0
        );
    }

    /// A big write is cut into segments that arrive one serialisation time apart.
    #[test]
    fn a_big_write_arrives_smoothly() {
        let params = LinkParams::from_rtt(512, 80);
        let mut link = Direction::new(params);
        let t0 = Instant::now();
        assert_eq!(link.offer(t0, &[1; 10 * SEGMENT_BYTES]), 10 * SEGMENT_BYTES);
        let mut previous = t0 + params.one_way_delay;
        for _ in 0..10 {
            let wakeup = link.next_wakeup().unwrap_or(t0);
            assert_eq!(wakeup - previous, params.serialisation_time(SEGMENT_BYTES));
            assert_eq!(
                link.poll_deliverable(wakeup).map(|bytes| bytes.len()),
                Some(SEGMENT_BYTES)
            );
            previous = wakeup;
        }
        assert!(link.is_empty());
    }

    #[test]
    fn a_full_queue_refuses_bytes_until_some_are_delivered() {
        let params = LinkParams::from_rtt(512, 80).with_queue_limit(10_000);
        let mut link = Direction::new(params);
        let t0 = Instant::now();
        assert_eq!(link.offer(t0, &[7; 25_000]), 10_000);
        assert_eq!(link.room(), 0);
        assert_eq!(link.offer(t0 + ms(10), &[8; 100]), 0);
        assert_eq!(link.bytes_in(), 10_000);
        // The first segment arrives after its serialisation and the delay; that much room opens.
        let first = t0 + params.serialisation_time(SEGMENT_BYTES) + params.one_way_delay;
        assert_eq!(link.poll_deliverable(first - Duration::from_nanos(1)), None);
        assert_eq!(link.room(), 0);
        assert_eq!(
            link.poll_deliverable(first).map(|bytes| bytes.len()),
            Some(SEGMENT_BYTES)
        );
        assert_eq!(link.room(), SEGMENT_BYTES);
        assert_eq!(link.offer(first, &[9; 25_000]), SEGMENT_BYTES);
        assert_eq!(link.room(), 0);
        assert_eq!(link.queued(), 10_000);
    }

    #[test]
    fn a_zero_queue_limit_still_moves_bytes() {
        let mut link = Direction::new(LinkParams::unlimited().with_queue_limit(0));
        let t0 = Instant::now();
        assert_eq!(link.offer(t0, b"ab"), 1);
        assert_eq!(link.poll_deliverable(t0), Some(b"a".to_vec()));
        assert_eq!(link.offer(t0, b"b"), 1);
        assert_eq!(link.poll_deliverable(t0), Some(b"b".to_vec()));
    }

    #[test]
    fn an_unlimited_link_only_delays() {
        let mut link = Direction::new(LinkParams::from_rtt(0, 100));
        let t0 = Instant::now();
        assert_eq!(link.offer(t0, &[3; 100_000]), 100_000);
        assert_eq!(link.next_wakeup(), Some(t0 + ms(50)));
        assert_eq!(
            link.poll_deliverable(t0 + ms(50)).map(|bytes| bytes.len()),
            Some(100_000)
        );
    }
}
