//! `xborder lookup` and `xborder db …`.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use xborder::intel::build::{self, BuildOptions, UpdateOptions};
use xborder::intel::{default_data_dir, Intel, LayersOrigin, VendorCatalogue};

use crate::cli::{DbCommand, IntelArgs, LookupArgs};
use crate::config::intel_sources;

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// One line per field, for a person.
fn describe(i: &Intel) -> String {
    let mut s = format!("{}\n", i.ip);
    let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<13} {v}\n"));
    row("class", i.class.as_str().to_owned());
    row(
        "country",
        match (i.country, i.country_source) {
            (Some(c), Some(src)) => format!("{c} (from {})", src.as_str()),
            (c, _) => dash(c),
        },
    );
    row(
        "asn",
        match (&i.asn, &i.as_org) {
            (Some(a), Some(o)) => format!("AS{a} {o}"),
            (Some(a), None) => format!("AS{a}"),
            _ => "-".into(),
        },
    );
    row(
        "provider",
        match (&i.provider, &i.provider_name) {
            (Some(id), Some(name)) => format!("{name} ({id})"),
            _ => "-".into(),
        },
    );
    row("jurisdiction", dash(i.jurisdiction));
    row("region", dash(i.region.as_deref()));
    row("service", dash(i.service.as_deref()));
    row("prefix", dash(i.prefix));
    row("dataset", dash(i.dataset.as_deref()));
    s
}

/// What the vendor catalogue says of a server name, for a person.
fn describe_name(name: &str, vendors: &VendorCatalogue) -> String {
    let mut s = format!("{name}\n");
    let mut row = |k: &str, v: &str| s.push_str(&format!("  {k:<13} {v}\n"));
    match vendors.lookup(name) {
        None => row("vendor", "- (no vendor in the catalogue owns this name)"),
        Some(m) => {
            let v = m.view();
            row("vendor", &format!("{} ({})", v.vendor_name, v.vendor));
            row("parent", v.parent);
            row("category", v.category);
            row("jurisdiction", &format!("{} ({})", v.jurisdiction, v.jurisdiction_reason));
            row("product", v.product);
            row("domain", v.domain);
            row("source", v.source);
        }
    }
    s
}

pub fn run_lookup(args: &LookupArgs) -> anyhow::Result<ExitCode> {
    let sources = intel_sources(&args.intel)?;
    let ips: Vec<Option<IpAddr>> = args.targets.iter().map(|t| t.parse().ok()).collect();
    // Names alone need only the vendor catalogue, not the address data.
    let db = if ips.iter().any(Option::is_some) { Some(sources.load()?) } else { None };
    let vendors = match &db {
        Some(db) => db.vendors.clone(),
        None => sources.vendors()?,
    };
    let mut out = io::stdout().lock();
    for (target, ip) in args.targets.iter().zip(ips) {
        match (ip, &db) {
            (Some(ip), Some(db)) => {
                let intel = db.lookup(ip);
                if args.json {
                    serde_json::to_writer(&mut out, &intel)?;
                    writeln!(out)?;
                } else {
                    write!(out, "{}", describe(&intel))?;
                }
            }
            _ => {
                if !is_domain_name(target) {
                    anyhow::bail!("'{target}' is neither an IP address nor a server name");
                }
                if args.json {
                    let found = vendors.lookup(target);
                    let value = match &found {
                        Some(m) => serde_json::to_value(m.view())?,
                        None => serde_json::json!({ "name": target.to_ascii_lowercase() }),
                    };
                    serde_json::to_writer(&mut out, &value)?;
                    writeln!(out)?;
                } else {
                    write!(out, "{}", describe_name(target, &vendors))?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Labels of letters, digits, '-' and '_' separated by dots.
fn is_domain_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn run_db_info(args: &IntelArgs) -> anyhow::Result<ExitCode> {
    let db = intel_sources(args)?.load()?;
    let mut out = io::stdout().lock();
    for d in &db.provenance {
        writeln!(out, "{}: {}", d.role, d.location)?;
        if let Some(e) = &d.entry {
            writeln!(out, "  name      {}", e.name)?;
            writeln!(out, "  source    {}", e.source)?;
            writeln!(out, "  snapshot  {}", e.snapshot)?;
            writeln!(out, "  licence   {}", e.licence)?;
            if let Some(a) = &e.attribution {
                writeln!(out, "  attribute {a}")?;
            }
        }
        writeln!(out, "  records   {}", d.records)?;
        writeln!(out, "  sha256    {}", d.sha256()?)?;
    }
    for (feed, n) in db.ranges.feed_counts() {
        writeln!(out, "feed {feed}: {n} prefixes")?;
    }
    let layers = match &db.layers_origin {
        LayersOrigin::MergedAtLoad => "merged at load from the data above".to_owned(),
        LayersOrigin::Cache(path) => format!("the built-in data's, cached in {}", path.display()),
        LayersOrigin::Cached(path) => {
            format!("the built-in data's, merged now and cached in {}", path.display())
        }
        LayersOrigin::NotCached(why) => {
            format!("the built-in data's, merged at every load: cannot cache them ({why})")
        }
    };
    writeln!(out, "address layers: {layers}")?;
    Ok(ExitCode::SUCCESS)
}

fn today() -> String {
    xborder::time::Timestamp::wall_clock().date()
}

pub fn run_db(cmd: DbCommand) -> anyhow::Result<ExitCode> {
    let report = match cmd {
        DbCommand::Info { intel } => return run_db_info(&intel),
        DbCommand::Build { from, asn_csv, country_mmdb, out, snapshot } => {
            build::build(&BuildOptions {
                from,
                asn_csv,
                country_mmdb,
                out,
                snapshot: snapshot.unwrap_or_else(today),
            })?
        }
        DbCommand::Update { from, mirror, feeds, force, timeout, data_dir } => {
            let data_dir = data_dir.or_else(default_data_dir).ok_or_else(|| {
                anyhow::anyhow!("no data directory: set --data-dir, XBORDER_DATA_DIR or HOME")
            })?;
            build::update(&UpdateOptions { from, mirror, feeds, force, data_dir, timeout })?
        }
    };
    for line in report.lines {
        writeln!(io::stdout(), "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}
