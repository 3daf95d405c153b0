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
    /// stdin), build flows, look their remote endpoints up, check them
    /// against rule packs and report the findings.
    Audit(AuditArgs),
    /// Print what is known about IP addresses (country, ASN, provider,
    /// region, service, jurisdiction) and server names (the vendor).
    Lookup(LookupArgs),
    /// Inspect, build and refresh the intelligence data.
    #[command(subcommand)]
    Db(DbCommand),
    /// Check rule packs.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Capture on an interface: alerts as flows match, periodic reports,
    /// statistics; SIGTERM/SIGINT stop (every live flow is reported),
    /// SIGHUP reloads rules and data.
    Live(LiveArgs),
    /// Set up a ClickHouse store and deliver spooled records to it.
    #[command(subcommand)]
    Clickhouse(ClickhouseCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (xborder.1 and one per subcommand) into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClickhouseCommand {
    /// Create the database and the flows and findings tables (idempotent).
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// A cluster of the server's remote_servers: shard-local tables
        /// (flows_local, findings_local) and Distributed tables over them,
        /// on --url and every --shard-url.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Further shards' URLs, with --cluster.
        #[arg(long = "shard-url", value_name = "URL", requires = "cluster")]
        shard_urls: Vec<String>,
    },
    /// Deliver a spool (records an audit could not send), oldest first,
    /// deleting each segment once the server took it.
    Flush {
        #[command(flatten)]
        store: StoreArgs,
        /// The spool (default: spool/ in the data directory).
        #[arg(long, value_name = "DIR")]
        spool_dir: Option<PathBuf>,
    },
}

/// Records to a central store, for `audit` and `live`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// Also send every flow and finding record (live: every flow record
    /// and alert) to ClickHouse (its HTTP interface, e.g.
    /// http://127.0.0.1:8123; tables made by `xborder clickhouse init`).
    /// What cannot be delivered is spooled.
    #[arg(long, value_name = "URL")]
    pub clickhouse: Option<String>,

    /// The ClickHouse database.
    #[arg(long, value_name = "NAME", default_value = "xborder", requires = "clickhouse")]
    pub clickhouse_database: String,

    /// The name of this gateway or machine in the store (ECS
    /// observer.name). Default: the host name.
    #[arg(long, value_name = "NAME")]
    pub observer: Option<String>,

    /// Where records ClickHouse did not take wait for `xborder clickhouse
    /// flush` (default: spool/ in the data directory).
    #[arg(long, value_name = "DIR", requires = "clickhouse")]
    pub spool_dir: Option<PathBuf>,

    /// Records per INSERT.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "clickhouse")]
    pub clickhouse_batch: usize,

    /// The spool's bound; records beyond it are dropped and counted.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, requires = "clickhouse")]
    pub spool_max_bytes: u64,
}

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The server's HTTP interface, e.g. http://127.0.0.1:8123
    /// (credentials as http://user:password@host:8123).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The database.
    #[arg(long, value_name = "NAME", default_value = "xborder")]
    pub database: String,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule packs: every error and warning at file:line:column
    /// (exit 2 on any error). Provider ids are checked against the
    /// catalogue and the providers of --overlay files.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        intel: IntelArgs,
    },
}

/// Where intelligence comes from (all optional: the defaults are built in).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IntelArgs {
    /// A country database (MaxMind GeoLite2/GeoIP2 Country or City, DB-IP,
    /// IPinfo lite, ip-location-db) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub geoip_country: Option<PathBuf>,

    /// An ASN database (MaxMind GeoLite2/GeoIP2 ASN, DB-IP, IPinfo lite,
    /// ip-location-db) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub geoip_asn: Option<PathBuf>,

    /// An overlay of CIDR → attributes (TOML), consulted first; repeatable.
    #[arg(long, value_name = "FILE")]
    pub overlay: Vec<PathBuf>,

    /// Where `db update` keeps refreshed ranges (default: $XBORDER_DATA_DIR,
    /// $XDG_DATA_HOME/xborder or ~/.local/share/xborder).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// A configuration file (TOML) with the same settings under [intel].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LookupArgs {
    /// IPv4 or IPv6 addresses, or server names (what the vendor catalogue
    /// says of them).
    #[arg(required = true, value_name = "IP|NAME")]
    pub targets: Vec<String>,

    /// One JSON object per address or name instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub intel: IntelArgs,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Each dataset in use: source, build date, records, licence, checksum.
    Info {
        #[command(flatten)]
        intel: IntelArgs,
    },
    /// Build the shipped data (geoip/) from snapshots of the providers'
    /// feeds, in the layout of shared/data/cloud-ranges.
    Build {
        /// The snapshot directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// ip-location-db's asn package directory (asn-ipv4.csv, asn-ipv6.csv)
        /// to rebuild the ASN table.
        #[arg(long, value_name = "DIR")]
        asn_csv: Option<PathBuf>,
        /// A country mmdb to ship.
        #[arg(long, value_name = "FILE")]
        country_mmdb: Option<PathBuf>,
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "geoip")]
        out: PathBuf,
        /// Snapshot date to record (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        snapshot: Option<String>,
    },
    /// Refresh provider ranges from the official feeds (or a directory of
    /// their files) into the data directory, which then takes precedence
    /// over the built-in ranges.
    Update {
        /// Read the feed files from this directory (for air-gapped gateways).
        #[arg(long, value_name = "DIR", conflicts_with = "mirror")]
        from: Option<PathBuf>,
        /// Download every feed file from this base URL instead.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Only this feed (repeatable): aws, google-cloud, oracle, azure,
        /// azure-china, cloudflare, fastly, digitalocean, linode, vultr.
        #[arg(long = "feed", value_name = "NAME")]
        feeds: Vec<String>,
        /// Accept a feed that shrank by more than 20%.
        #[arg(long)]
        force: bool,
        /// Per-download time limit.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Capture files, directories (walked recursively in name order) or -
    /// for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Report format: text for people, html to hand on; json (one
    /// document), jsonl (one record per finding) or csv (one row per
    /// finding) for machines.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: xborder::pipeline::ReportFormat,

    /// Also write every flow record (json and jsonl formats).
    #[arg(long)]
    pub flows: bool,

    /// Where the report goes (default, or `-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit with status 1 when a finding is at or above this severity
    /// (info, low, medium, high, critical), or never (none).
    #[arg(long, value_name = "SEVERITY", default_value = "low")]
    pub fail_on: FailOn,

    /// Print nothing but errors, and the report when it goes to standard
    /// output in a machine format.
    #[arg(short, long)]
    pub quiet: bool,

    /// Most flows kept alive at once in each shard (--threads N makes N less
    /// two, at least 1); beyond it the idlest end early (counted in the
    /// summary). Bounds memory on a flood.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_flows: usize,

    /// Cores the audit runs on (default: all this process may use); with
    /// fewer, it keeps to N of them, leaving the others free. The
    /// packets' flows and names are split by address pair into N less two
    /// shards (the reader and the thread applying intelligence and rules
    /// take two; at least 1). The answers are the same for any number,
    /// unless a shard reaches --max-flows (each holds up to that many).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Also write the packets of the flows with findings to FILE (pcapng,
    /// for Wireshark): original bytes and timestamps, each packet's
    /// comment naming its findings. Reads the inputs a second time, so not
    /// with standard input.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,

    #[command(flatten)]
    pub fleet: FleetArgs,

    /// The least severe finding that puts a flow into --evidence.
    #[arg(long, value_name = "SEVERITY", default_value = "low", requires = "evidence")]
    pub evidence_min_severity: MinSeverity,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// What `audit` and `live` share: the flow, names, intelligence and policy
/// settings.
#[derive(Debug, clap::Args)]
pub struct AnalysisArgs {
    /// A rule pack (TOML; repeatable). Default: the packs in rules/, built
    /// in.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

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

    /// Flows of the traffic inside tunnels (VXLAN, GENEVE, GRE, NVGRE,
    /// ERSPAN, GTP-U, IP-in-IP, Teredo) as well as of the tunnels
    /// themselves (`inner`, the default), or every flow keyed on the
    /// outermost IP header (`outer`). Config file: `[tunnels] decode`.
    #[arg(long, value_enum, value_name = "LAYER")]
    pub tunnels: Option<TunnelLayerArg>,

    /// A UDP destination port carrying VXLAN (repeatable; replaces 4789
    /// and 8472; `0` alone: none).
    #[arg(long = "vxlan-port", value_name = "PORT")]
    pub vxlan_ports: Vec<u16>,

    /// A UDP destination port carrying GENEVE (repeatable; replaces 6081;
    /// `0` alone: none).
    #[arg(long = "geneve-port", value_name = "PORT")]
    pub geneve_ports: Vec<u16>,

    /// A UDP destination port carrying GTP-U (repeatable; replaces 2152;
    /// `0` alone: none).
    #[arg(long = "gtp-u-port", value_name = "PORT")]
    pub gtp_u_ports: Vec<u16>,

    /// A UDP port, on either side, carrying Teredo (repeatable; replaces
    /// 3544; `0` alone: none).
    #[arg(long = "teredo-port", value_name = "PORT")]
    pub teredo_ports: Vec<u16>,

    /// Skip endpoint intelligence (flows only).
    #[arg(long)]
    pub no_intel: bool,

    /// Skip learning names from the traffic (DNS answers, TLS/QUIC SNI,
    /// HTTP Host).
    #[arg(long)]
    pub no_names: bool,

    #[command(flatten)]
    pub intel: IntelArgs,
}

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// The interface to capture on (`any` for all).
    #[arg(short, long, value_name = "IFACE")]
    pub interface: String,

    /// A capture filter (BPF, tcpdump syntax).
    #[arg(long, value_name = "FILTER")]
    pub bpf: Option<String>,

    /// Bytes captured per packet (the names are in the first ones).
    #[arg(long, value_name = "BYTES", default_value_t = 65535)]
    pub snaplen: u32,

    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Kernel capture buffer in bytes (default: libpcap's, 2 MB).
    #[arg(long, value_name = "BYTES")]
    pub buffer_size: Option<u32>,

    /// Hand each packet over as it arrives instead of in blocks at most
    /// 100 ms old. Costs a wake-up per packet: at high rates the kernel
    /// drops packets (measured: drops from 100,000 packets/s with it, none
    /// at 526,000 without).
    #[arg(long)]
    pub immediate: bool,

    /// Where alerts go, one JSON line each (appended; `-`: standard
    /// output, the default). Reopened on SIGHUP, for log rotation.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,

    /// Also send alerts to syslog (facility daemon, level from the
    /// severity).
    #[arg(long)]
    pub syslog: bool,

    /// The syslog socket.
    #[arg(long, value_name = "PATH", default_value = "/dev/log", requires = "syslog")]
    pub syslog_socket: PathBuf,

    /// Write a report (json and text) into --report-dir this often.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "report_dir")]
    pub report_every: Option<Duration>,

    /// Where reports go; the final report at shutdown goes there too.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Print capture statistics to standard error this often.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub stats_every: Option<Duration>,

    /// Most flows kept alive at once; beyond it the idlest end early
    /// (counted).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_flows: usize,

    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Keep the packets of flagged flows, from their first packet on, in
    /// rotating pcapng files in DIR (each packet commented with its
    /// findings; the alert names the file).
    #[arg(long, value_name = "DIR")]
    pub evidence_dir: Option<PathBuf>,

    /// The evidence files together stay under this many bytes: the oldest
    /// are deleted (their packets counted as dropped).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, requires = "evidence_dir")]
    pub evidence_max_bytes: u64,

    /// How long after a flow's first packet its early alert is decided
    /// (its names are known by then).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub alert_delay: Duration,

    /// Drop privileges to this user once the capture is open.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Which IP header keys a flow (`--tunnels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelLayerArg {
    /// The innermost, with the tunnels' own flows too.
    Inner,
    /// The outermost only.
    Outer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MinSeverity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl From<MinSeverity> for xborder::policy::Severity {
    fn from(s: MinSeverity) -> Self {
        match s {
            MinSeverity::Info => Self::Info,
            MinSeverity::Low => Self::Low,
            MinSeverity::Medium => Self::Medium,
            MinSeverity::High => Self::High,
            MinSeverity::Critical => Self::Critical,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// Never exit 1 for findings.
    None,
}

impl FailOn {
    pub fn severity(self) -> Option<xborder::policy::Severity> {
        use xborder::policy::Severity;
        Some(match self {
            FailOn::Info => Severity::Info,
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
            FailOn::None => return None,
        })
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))
}
