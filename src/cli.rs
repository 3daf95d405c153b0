//! What the user typed (clap derive), nothing more.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

/// Audit network traffic for flows to cloud endpoints in restricted
/// jurisdictions.
#[derive(Debug, Parser)]
#[command(name = "xborder", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read captures (pcap, pcapng, gzip; files, directories or - for
    /// stdin), build flows and summarise them.
    Audit(AuditArgs),
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Capture files, directories (walked recursively in name order) or -
    /// for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Write every flow record in this format.
    #[arg(long, value_name = "FORMAT")]
    pub flows: Option<FlowFormat>,

    /// Where flow records go (default: standard output, and the summary
    /// then goes to standard error).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// A local network (repeatable). Default: the private and
    /// special-purpose ranges (RFC 1918, 100.64.0.0/10, loopback,
    /// link-local, multicast, fc00::/7).
    #[arg(long = "local-net", value_name = "CIDR")]
    pub local_nets: Vec<IpNet>,

    /// Idle timeout of an open TCP connection.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub tcp_timeout: Duration,

    /// How long a TCP connection closed by FIN or RST stays to collect late
    /// packets.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub tcp_close_timeout: Duration,

    /// Idle timeout of a UDP flow.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub udp_timeout: Duration,

    /// Idle timeout of ICMP and other flows.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub other_timeout: Duration,

    /// Print nothing but errors (and flow records when asked for).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowFormat {
    /// One JSON object per flow and line (ECS field names).
    Jsonl,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))
}
