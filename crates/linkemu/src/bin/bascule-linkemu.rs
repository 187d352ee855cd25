//! `bascule-linkemu`: relays TCP connections through an emulated thin link and reports the bytes
//! carried each way.
//!
//! ```text
//! bascule-linkemu --listen 127.0.0.1:15900 --target 127.0.0.1:5900 --rate-kbps 512 --rtt-ms 80
//! ```

use anyhow::Context;
use bascule_linkemu::{LinkParams, Relay, RelayStats};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

/// How often the counters are printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Relay TCP connections through an emulated thin link (rate, delay, queue) and count the bytes
/// carried each way.
#[derive(Debug, Parser)]
#[command(name = "bascule-linkemu", version)]
struct Args {
    /// Address to listen on (the viewer connects here).
    #[arg(long, default_value = "127.0.0.1:15900")]
    listen: SocketAddr,
    /// Address of the server to relay to.
    #[arg(long)]
    target: SocketAddr,
    /// Link rate in kbit/s (1000 bit/s), client to server, and server to client unless
    /// --down-rate-kbps is given; 0 means unlimited.
    #[arg(long, default_value_t = 512)]
    rate_kbps: u64,
    /// Server-to-client rate in kbit/s, when it differs from --rate-kbps; 0 means unlimited.
    #[arg(long)]
    down_rate_kbps: Option<u64>,
    /// Round-trip time in milliseconds, split evenly between the two directions.
    #[arg(long, default_value_t = 80)]
    rtt_ms: u64,
    /// Queue per direction in KiB, bytes in flight included (default: the bytes in flight plus
    /// 250 ms at the rate, at least 16 KiB).
    #[arg(long)]
    queue_kib: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut up = LinkParams::from_rtt(args.rate_kbps, args.rtt_ms);
    let mut down = LinkParams::from_rtt(args.down_rate_kbps.unwrap_or(args.rate_kbps), args.rtt_ms);
    if let Some(queue_kib) = args.queue_kib {
        up = up.with_queue_limit(queue_kib.saturating_mul(1024));
        down = down.with_queue_limit(queue_kib.saturating_mul(1024));
    }
    let relay = Relay::start(args.listen, args.target, up, down)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "listening on {}, relaying to {}: up {}, down {}, rtt {} ms",
        relay.local_addr(),
        args.target,
        describe_rate(up.rate_bps),
        describe_rate(down.rate_bps),
        args.rtt_ms,
    );
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.tick().await;
    loop {
        tokio::select! {
            _ = report.tick() => print_stats(relay.stats()),
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot wait for Ctrl+C")?;
                print_stats(relay.stats());
                relay.shutdown().await;
                return Ok(());
            }
        }
    }
}

fn describe_rate(rate_bps: u64) -> String {
    if rate_bps == 0 {
        "unlimited".to_owned()
    } else {
        format!("{} kbit/s", rate_bps / 1000)
    }
}

fn print_stats(stats: RelayStats) {
    println!(
        "connections {}, up {} bytes, down {} bytes",
        stats.connections, stats.bytes_up, stats.bytes_down
    );
}
