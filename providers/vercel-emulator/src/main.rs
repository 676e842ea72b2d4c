//! `vercel-emulator`: runs the Vercel API emulator as a standalone server.

use clap::Parser;
use stackwright_vercel_emulator::{Emulator, EmulatorConfig, TeamConfig, TokenConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Emulates the Vercel REST API (projects, env vars, domains, deployments) on localhost.
#[derive(Debug, Parser)]
#[command(name = "vercel-emulator", version)]
struct Args {
    /// TOML or JSON configuration file; flags below override it.
    #[arg(long, env = "VERCEL_EMULATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1, or the config file's].
    #[arg(long)]
    host: Option<IpAddr>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short)]
    port: Option<u16>,
    /// Accepted bearer token (repeatable); each has access to every team.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Team as `ID` or `ID:SLUG` (repeatable); the slug defaults to the id without `team_`.
    #[arg(long = "team")]
    teams: Vec<String>,
    /// Seed for ids, faults and build outcomes.
    #[arg(long)]
    seed: Option<u64>,
    /// Require this bearer token on /_emulator/*.
    #[arg(long)]
    admin_token: Option<String>,
    /// Requests allowed per token per window.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Rate-limit window in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    rate_window_ms: u64,
    /// GETs that answer 404 right after an object is created.
    #[arg(long)]
    hidden_reads: Option<u32>,
    /// Milliseconds a new object stays invisible to reads.
    #[arg(long)]
    hidden_ms: Option<u64>,
    /// Probability of an injected error status.
    #[arg(long)]
    error_rate: Option<f64>,
    /// Statuses for injected errors, comma separated.
    #[arg(long, value_delimiter = ',')]
    error_statuses: Option<Vec<u16>>,
    /// Added latency in milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Probability of a connection reset.
    #[arg(long)]
    reset_rate: Option<f64>,
    /// Answer the first N requests with 429.
    #[arg(long)]
    burst_429: Option<u32>,
    /// Milliseconds a deployment stays QUEUED.
    #[arg(long)]
    queued_ms: Option<u64>,
    /// Milliseconds a deployment spends BUILDING.
    #[arg(long)]
    building_ms: Option<u64>,
}

fn apply(args: Args) -> Result<EmulatorConfig, Box<dyn std::error::Error>> {
    let mut cfg = match &args.config {
        Some(path) => EmulatorConfig::from_file(path)?,
        None => EmulatorConfig::default(),
    };
    let port = args.port.unwrap_or(if args.config.is_some() { cfg.bind.port() } else { 3900 });
    let host = args.host.unwrap_or(if args.config.is_some() { cfg.bind.ip() } else { IpAddr::from([127, 0, 0, 1]) });
    cfg.bind = SocketAddr::new(host, port);
    cfg.tokens.extend(args.tokens.into_iter().map(TokenConfig::new));
    for team in args.teams {
        let (id, slug) = match team.split_once(':') {
            Some((id, slug)) => (id.to_owned(), slug.to_owned()),
            None => (team.clone(), team.strip_prefix("team_").unwrap_or(&team).to_owned()),
        };
        cfg.teams.push(TeamConfig { id, slug, name: None });
    }
    if args.seed.is_some() {
        cfg.seed = args.seed;
    }
    if args.admin_token.is_some() {
        cfg.admin_token = args.admin_token;
    }
    if let Some(requests) = args.rate_limit {
        cfg.rate_limit =
            Some(stackwright_vercel_emulator::RateLimitConfig { requests, window_ms: args.rate_window_ms });
    }
    if let Some(n) = args.hidden_reads {
        cfg.consistency.hidden_reads = n;
    }
    if let Some(ms) = args.hidden_ms {
        cfg.consistency.hidden_ms = ms;
    }
    if let Some(r) = args.error_rate {
        cfg.faults.error_rate = r;
    }
    if let Some(s) = args.error_statuses {
        cfg.faults.error_statuses = s;
    }
    if let Some(ms) = args.latency_ms {
        cfg.faults.latency_ms = ms;
    }
    if let Some(r) = args.reset_rate {
        cfg.faults.reset_rate = r;
    }
    if let Some(n) = args.burst_429 {
        cfg.faults.burst_429 = n;
    }
    if let Some(ms) = args.queued_ms {
        cfg.deployments.queued_ms = ms;
    }
    if let Some(ms) = args.building_ms {
        cfg.deployments.building_ms = ms;
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs go to stderr so stdout carries only the banner, which scripts parse for the URL.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cfg = apply(Args::parse())?;
    let emu = Emulator::builder().config(cfg).start().await?;
    let cfg = emu.config();
    println!("vercel-emulator listening on {}", emu.base_url());
    for t in &cfg.tokens {
        println!("  token: {}", t.token);
    }
    for t in &cfg.teams {
        println!("  team:  {} (slug {})", t.id, t.slug);
    }
    println!("  admin: {}", emu.admin_url());
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    emu.shutdown().await;
    Ok(())
}
