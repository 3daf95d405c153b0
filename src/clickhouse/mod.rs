//! Many gateways, one store: flow and finding records into ClickHouse
//! over its HTTP interface (`audit --clickhouse URL`).
//!
//! Contract:
//! - Two tables, `flows` and `findings`, whose columns are the flattened
//!   field names of the jsonl records (`source.ip`, `rule.id`, …), plus
//!   `id` (deterministic: SHA-256 of observer, record kind, flow key, first
//!   packet, file, frame and rule), `day` (of the first packet) and
//!   `observer.name`. Lists (`event.category`, TCP flags, DNS names) are
//!   one string, space-separated. ReplacingMergeTree ordered by `id`: a
//!   batch sent twice is one set of records once merged, and queries with
//!   `FINAL` count it once.
//! - Before the captures are read the tables are checked: a server that
//!   answers with an error (wrong URL path, credentials, a missing table,
//!   a missing column) is an error naming what is wrong; a server that
//!   cannot be reached is not: the records go to the spool
//!   ([`spool`]), and `xborder clickhouse flush` delivers them later.
//! - A batch the server refuses or that cannot be sent is spooled whole;
//!   after the first batch that could not be sent, the rest of the run is
//!   spooled without trying again.

pub mod spool;

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::pipeline::{AuditRun, Sink};
use crate::report::flows::{self, IntelJsonCache, Records};
use crate::report::AuditReport;
use spool::Spool;

/// Numeric columns; every other one is a string.
const NUMBERS: &[&str] = &[
    "destination.as.number",
    "destination.bytes",
    "destination.packets",
    "destination.port",
    "event.duration",
    "event.severity",
    "network.bytes",
    "network.packets",
    "source.as.number",
    "source.bytes",
    "source.packets",
    "source.port",
    "xborder.finding.bytes_in",
    "xborder.finding.bytes_out",
    "xborder.finding.packets_in",
    "xborder.finding.packets_out",
    "xborder.flow.destination.payload_bytes",
    "xborder.flow.first_frame",
    "xborder.flow.source.payload_bytes",
];

/// The columns of both tables from the records (flows have no rule or
/// finding fields).
const FLOW_COLUMNS: &[&str] = &[
    "@timestamp",
    "destination.as.number",
    "destination.as.organization.name",
    "destination.bytes",
    "destination.geo.country_iso_code",
    "destination.ip",
    "destination.packets",
    "destination.port",
    "event.category",
    "event.duration",
    "event.end",
    "event.kind",
    "event.start",
    "file.path",
    "network.bytes",
    "network.direction",
    "network.iana_number",
    "network.packets",
    "network.transport",
    "source.as.number",
    "source.as.organization.name",
    "source.bytes",
    "source.geo.country_iso_code",
    "source.ip",
    "source.packets",
    "source.port",
    "tls.client.server_name",
    "url.domain",
    "xborder.flow.carries",
    "xborder.flow.destination.payload_bytes",
    "xborder.flow.destination.tcp_flags",
    "xborder.flow.end_reason",
    "xborder.flow.file",
    "xborder.flow.first_frame",
    "xborder.flow.remote",
    "xborder.flow.source.payload_bytes",
    "xborder.flow.source.tcp_flags",
    "xborder.names.dns",
    "xborder.names.server_name",
    "xborder.names.source",
    "xborder.tunnels",
    "xborder.remote.address_class",
    "xborder.remote.country_source",
    "xborder.remote.dataset",
    "xborder.remote.jurisdiction",
    "xborder.remote.prefix",
    "xborder.remote.provider",
    "xborder.remote.provider_name",
    "xborder.remote.region",
    "xborder.remote.service",
    "xborder.vendor.category",
    "xborder.vendor.domain",
    "xborder.vendor.id",
    "xborder.vendor.jurisdiction",
    "xborder.vendor.matched_name",
    "xborder.vendor.name",
    "xborder.vendor.parent",
    "xborder.vendor.product",
];

const FINDING_COLUMNS: &[&str] = &[
    "event.severity",
    "rule.description",
    "rule.id",
    "rule.name",
    "rule.reference",
    "rule.ruleset",
    "rule.version",
    "xborder.finding.bytes_in",
    "xborder.finding.bytes_out",
    "xborder.finding.country",
    "xborder.finding.local_ip",
    "xborder.finding.packets_in",
    "xborder.finding.packets_out",
    "xborder.finding.phase",
    "xborder.finding.remote_ip",
    "xborder.finding.severity",
    "xborder.finding.unknown",
];

/// The two tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Flows,
    Findings,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Flows, Table::Findings];

    pub fn name(self) -> &'static str {
        match self {
            Table::Flows => "flows",
            Table::Findings => "findings",
        }
    }

    fn of(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its record columns (without `id`, `day`, `observer.name`).
    pub fn columns(self) -> Vec<&'static str> {
        let mut c: Vec<&str> = FLOW_COLUMNS.to_vec();
        if self == Table::Findings {
            c.extend(FINDING_COLUMNS.iter().filter(|n| !FLOW_COLUMNS.contains(n)));
        }
        c.sort_unstable();
        c
    }

    /// `CREATE TABLE IF NOT EXISTS` for it in `database`.
    pub fn ddl(self, database: &str) -> String {
        self.ddl_named(database, self.name())
    }

    /// The shard-local table of a cluster (`flows_local`).
    pub fn local_name(self) -> String {
        format!("{}_local", self.name())
    }

    /// The Distributed table over the shards' local tables, sharded by
    /// `id` (so a record sent twice lands on one shard and merges there).
    pub fn distributed_ddl(self, database: &str, cluster: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS `{database}`.`{}` AS `{database}`.`{}` ENGINE = Distributed(`{cluster}`, `{database}`, `{}`, sipHash64(id))",
            self.name(),
            self.local_name(),
            self.local_name()
        )
    }

    fn ddl_named(self, database: &str, name: &str) -> String {
        let mut cols = vec![
            "`id` String".to_owned(),
            "`day` Date".to_owned(),
            "`observer.name` String".to_owned(),
        ];
        for c in self.columns() {
            cols.push(format!("`{c}` {}", column_type(c)));
        }
        format!(
            "CREATE TABLE IF NOT EXISTS `{database}`.`{name}` (\n  {}\n) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY id",
            cols.join(",\n  ")
        )
    }
}

/// The type of a record column.
fn column_type(column: &str) -> &'static str {
    if NUMBERS.contains(&column) {
        "Nullable(UInt64)"
    } else {
        "Nullable(String)"
    }
}

/// The whole schema as SQL (`contrib/clickhouse/schema.sql`).
pub fn schema_sql(database: &str) -> String {
    let mut sql = format!("CREATE DATABASE IF NOT EXISTS `{database}`;\n");
    for t in Table::ALL {
        sql.push('\n');
        sql.push_str(&t.ddl(database));
        sql.push_str(";\n");
    }
    sql
}

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("{url}: {message}")]
    Server { url: String, message: String },
    #[error("{url}: cannot reach the server: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: table {table}: {message} (`xborder clickhouse init` creates it)")]
    Schema { url: String, table: String, message: String },
    #[error("{path}: {source}")]
    Spool { path: String, source: io::Error },
}

/// A ClickHouse server and database.
pub struct ClickHouse {
    /// Without credentials, for messages.
    pub url: String,
    base: String,
    credentials: Option<(String, String)>,
    pub database: String,
    agent: ureq::Agent,
}

/// Why a request did not succeed.
enum Failure {
    Unreachable(String),
    Refused(String),
}

impl ClickHouse {
    /// `url`: `http://[user[:password]@]host:port`.
    pub fn new(url: &str, database: &str) -> Self {
        let url = url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (credentials, host) = match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((user.to_owned(), password.to_owned())), host)
            }
            None => (None, rest),
        };
        let base = format!("{scheme}://{host}/");
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Self { url: base.clone(), base, credentials, database: database.to_owned(), agent }
    }

    fn request(&self, sql: &str, body: &[u8]) -> Result<String, Failure> {
        self.request_with(sql, body, &[])
    }

    fn request_with(
        &self,
        sql: &str,
        body: &[u8],
        settings: &[(&str, &str)],
    ) -> Result<String, Failure> {
        let mut req = self.agent.post(&self.base).query("query", sql);
        for (k, v) in settings {
            req = req.query(*k, *v);
        }
        if let Some((user, password)) = &self.credentials {
            req = req.header("X-ClickHouse-User", user).header("X-ClickHouse-Key", password);
        }
        let mut response = req.send(body).map_err(|e| Failure::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        if status == 200 {
            Ok(text)
        } else {
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            Err(Failure::Refused(format!("HTTP {status}: {first}")))
        }
    }

    fn error(&self, f: Failure) -> ClickHouseError {
        match f {
            Failure::Unreachable(message) => {
                ClickHouseError::Unreachable { url: self.url.clone(), message }
            }
            Failure::Refused(message) => ClickHouseError::Server { url: self.url.clone(), message },
        }
    }

    /// Creates the database and the tables (idempotent); tables made by
    /// an older xborder get the columns it did not have.
    pub fn init(&self) -> Result<(), ClickHouseError> {
        let db = &self.database;
        self.request(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"), b"")
            .map_err(|f| self.error(f))?;
        for t in Table::ALL {
            self.request(&t.ddl(db), b"").map_err(|f| self.error(f))?;
            self.add_missing_columns(t, t.name())?;
        }
        Ok(())
    }

    /// `ALTER TABLE … ADD COLUMN` for each column of `t` the table `name`
    /// lacks, found with `DESCRIBE` first rather than relying on `ADD
    /// COLUMN IF NOT EXISTS`, which older servers may not have.
    fn add_missing_columns(&self, t: Table, name: &str) -> Result<(), ClickHouseError> {
        let db = &self.database;
        let sql = format!("DESCRIBE TABLE `{db}`.`{name}` FORMAT TSV");
        let described = self.request(&sql, b"").map_err(|f| self.error(f))?;
        let have: Vec<&str> = described.lines().filter_map(|l| l.split('\t').next()).collect();
        for c in t.columns().into_iter().filter(|c| !have.contains(c)) {
            let sql = format!("ALTER TABLE `{db}`.`{name}` ADD COLUMN `{c}` {}", column_type(c));
            self.request(&sql, b"").map_err(|f| self.error(f))?;
        }
        Ok(())
    }

    /// For a cluster: the database and the shard-local tables on this
    /// server (one of the cluster's shards), and the Distributed tables
    /// over `cluster` (as the server's `remote_servers` defines it), which
    /// records are inserted into and queried from. Run on every shard.
    pub fn init_cluster(&self, cluster: &str) -> Result<(), ClickHouseError> {
        let db = &self.database;
        self.request(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"), b"")
            .map_err(|f| self.error(f))?;
        let known = self
            .request(
                &format!(
                    "SELECT count() FROM system.clusters WHERE cluster = '{}'",
                    cluster.replace('\'', "")
                ),
                b"",
            )
            .map_err(|f| self.error(f))?;
        if known.trim() == "0" {
            return Err(ClickHouseError::Server {
                url: self.url.clone(),
                message: format!("no cluster {cluster} in the server's remote_servers"),
            });
        }
        for t in Table::ALL {
            self.request(&t.ddl_named(db, &t.local_name()), b"").map_err(|f| self.error(f))?;
            self.add_missing_columns(t, &t.local_name())?;
            self.request(&t.distributed_ddl(db, cluster), b"").map_err(|f| self.error(f))?;
            self.add_missing_columns(t, t.name())?;
        }
        Ok(())
    }

    /// Checks that both tables have every column the records need.
    pub fn check(&self) -> Result<(), ClickHouseError> {
        for t in Table::ALL {
            let table = format!("{}.{}", self.database, t.name());
            let sql = format!("DESCRIBE TABLE `{}`.`{}` FORMAT TSV", self.database, t.name());
            let described = self.request(&sql, b"").map_err(|f| match f {
                Failure::Refused(message) => {
                    ClickHouseError::Schema { url: self.url.clone(), table: table.clone(), message }
                }
                f => self.error(f),
            })?;
            let have: Vec<&str> = described.lines().filter_map(|l| l.split('\t').next()).collect();
            let wanted = ["id", "day", "observer.name"].into_iter().chain(t.columns());
            let missing: Vec<&str> = wanted.filter(|c| !have.contains(c)).collect();
            if !missing.is_empty() {
                return Err(ClickHouseError::Schema {
                    url: self.url.clone(),
                    table,
                    message: format!(
                        "missing column{} {}",
                        plural(missing.len()),
                        missing.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    fn insert(&self, table: Table, body: &[u8]) -> Result<(), Failure> {
        let sql = format!("INSERT INTO `{}`.`{}` FORMAT JSONEachRow", self.database, table.name());
        // Into a Distributed table: acknowledged once every shard has its
        // part, not when the first server queued it.
        self.request_with(&sql, body, &[("insert_distributed_sync", "1")]).map(|_| ())
    }

    /// Rows of a table, `FINAL` (for tests and `flush`'s summary).
    pub fn count(&self, table: Table) -> Result<u64, ClickHouseError> {
        let sql = format!("SELECT count() FROM `{}`.`{}` FINAL", self.database, table.name());
        let text = self.request(&sql, b"").map_err(|f| self.error(f))?;
        text.trim().parse().map_err(|_| ClickHouseError::Server {
            url: self.url.clone(),
            message: format!("not a count: {text}"),
        })
    }

    /// Delivers the spool's segments in order, deleting each once the
    /// server took it. A segment the server refuses (it answered with an
    /// error) is set aside as `NAME.rejected`, so that it does not block
    /// the ones after it; an unreachable server stops the flush (the rest
    /// stay). Returns what was delivered and set aside even when it stopped.
    pub fn flush(&self, spool: &mut Spool) -> (FlushCounts, Result<(), ClickHouseError>) {
        // Segments go away: the spool counts its bytes again.
        spool.recount();
        let io_error = |path: &std::path::Path, source| ClickHouseError::Spool {
            path: path.display().to_string(),
            source,
        };
        let mut counts = FlushCounts::default();
        let segments = match spool.segments() {
            Ok(s) => s,
            Err(e) => return (counts, Err(io_error(&spool.dir, e))),
        };
        for segment in segments {
            let Some(table) = Table::of(&segment.table) else { continue };
            let body = match std::fs::read(&segment.path) {
                Ok(b) => b,
                Err(e) => return (counts, Err(io_error(&segment.path, e))),
            };
            let records = spool::records(&body);
            match self.insert(table, &body) {
                Ok(()) => {
                    if let Err(e) = std::fs::remove_file(&segment.path) {
                        return (counts, Err(io_error(&segment.path, e)));
                    }
                    counts.segments += 1;
                    counts.records += records;
                }
                Err(Failure::Refused(why)) => {
                    let aside = segment.path.with_extension("jsonl.rejected");
                    if let Err(e) = std::fs::rename(&segment.path, &aside) {
                        return (counts, Err(io_error(&segment.path, e)));
                    }
                    counts.rejected += records;
                    counts.first_rejection.get_or_insert(format!("{}: {why}", aside.display()));
                }
                Err(f) => return (counts, Err(self.error(f))),
            }
        }
        (counts, Ok(()))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What a flush delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushCounts {
    pub segments: u64,
    pub records: u64,
    /// Records of segments the server refused, set aside.
    pub rejected: u64,
    /// The first of those, with the server's answer.
    pub first_rejection: Option<String>,
}

/// The row of one jsonl record: its fields flattened, lists joined, with
/// `id`, `day` and `observer.name`; the table it goes to.
pub fn row(record: &Value, observer: &str) -> Option<(Table, Value)> {
    let mut out = Vec::new();
    let table = write_row(record, observer, &mut out)?;
    Some((table, serde_json::from_slice(&out).ok()?))
}

/// [`row`] as one JSON object appended to `out` (no newline), written
/// straight from the record: no map of its fields is built.
pub fn write_row(record: &Value, observer: &str, out: &mut Vec<u8>) -> Option<Table> {
    let table = match record.pointer("/event/kind")?.as_str()? {
        "alert" => Table::Findings,
        _ => Table::Flows,
    };
    let text = |path: &str| -> String {
        match record.pointer(path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    let mut id = Sha256::new();
    id.update(observer.as_bytes());
    id.update([0]);
    id.update(table.name().as_bytes());
    id.update([0]);
    for path in [
        "/network/transport",
        "/source/ip",
        "/source/port",
        "/destination/ip",
        "/destination/port",
        "/event/start",
        "/xborder/flow/file",
        "/xborder/flow/first_frame",
        "/rule/id",
        "/rule/ruleset",
    ] {
        id.update(text(path).as_bytes());
        id.update([0]);
    }
    let start = text("/event/start");
    let day: String = start.chars().take(10).collect();
    out.extend_from_slice(b"{\"id\":\"");
    for b in &id.finalize()[..16] {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out.extend_from_slice(b"\",\"day\":");
    json_string(out, &day);
    out.extend_from_slice(b",\"observer.name\":");
    json_string(out, observer);
    let mut key = String::with_capacity(64);
    flatten_into(record, &mut key, out);
    out.push(b'}');
    Some(table)
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `,"a.b.c":value` for every leaf under `v` (objects walked,
/// lists joined with spaces, nulls and `observer` left out: the row has
/// its own).
fn flatten_into(v: &Value, key: &mut String, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if key.is_empty() && k == "observer" {
                    continue;
                }
                let len = key.len();
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
                flatten_into(v, key, out);
                key.truncate(len);
            }
        }
        Value::Null => {}
        leaf => {
            out.push(b',');
            json_string(out, key);
            out.push(b':');
            match leaf {
                // The tunnels around a flow: kept as their JSON array
                // (JSONExtract in ClickHouse 19.x and later reads it).
                Value::Array(items) if items.iter().any(Value::is_object) => {
                    json_string(out, &leaf.to_string());
                }
                Value::Array(items) => {
                    let words: Vec<String> = items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect();
                    json_string(out, &words.join(" "));
                }
                other => {
                    let _ = serde_json::to_writer(&mut *out, other);
                }
            }
        }
    }
}

/// What the sink did with the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetCounts {
    pub sent: u64,
    pub spooled: u64,
    /// Not spooled: the spool was at its bound.
    pub dropped: u64,
}

/// Records per INSERT.
pub const BATCH_RECORDS: usize = 10_000;

/// The audit's records into ClickHouse, or into the spool.
pub struct ClickHouseSink {
    pub client: ClickHouse,
    pub spool: Spool,
    pub observer: String,
    /// False once a batch could not be sent: the rest go to the spool.
    pub reachable: bool,
    pub counts: FleetCounts,
    /// Why the first batch was spooled, for the summary line.
    pub first_failure: Option<String>,
    /// Records per INSERT (default [`BATCH_RECORDS`]).
    pub batch_records: usize,
    batches: [(Vec<u8>, u64); 2],
    /// Records waiting to be spooled, per table.
    spooling: [(Vec<u8>, u64); 2],
    /// A row being written (reused).
    row: Vec<u8>,
}

impl ClickHouseSink {
    pub fn new(client: ClickHouse, spool: Spool, observer: String, reachable: bool) -> Self {
        Self {
            client,
            spool,
            observer,
            reachable,
            counts: FleetCounts::default(),
            first_failure: None,
            batch_records: BATCH_RECORDS,
            batches: [(Vec::new(), 0), (Vec::new(), 0)],
            spooling: [(Vec::new(), 0), (Vec::new(), 0)],
            row: Vec::new(),
        }
    }

    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let record: Value = serde_json::from_slice(line).map_err(io::Error::other)?;
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        let Some(table) = write_row(&record, &self.observer, &mut row) else {
            self.row = row;
            return Ok(());
        };
        let batch = &mut self.batches[table as usize];
        batch.0.extend_from_slice(&row);
        batch.0.push(b'\n');
        self.row = row;
        batch.1 += 1;
        if batch.1 as usize >= self.batch_records.max(1) {
            self.send(table)?;
        }
        Ok(())
    }

    fn send(&mut self, table: Table) -> io::Result<()> {
        let (body, n) = std::mem::take(&mut self.batches[table as usize]);
        if n == 0 {
            return Ok(());
        }
        if self.reachable {
            match self.client.insert(table, &body) {
                Ok(()) => {
                    self.counts.sent += n;
                    return Ok(());
                }
                Err(Failure::Unreachable(why) | Failure::Refused(why)) => {
                    self.reachable = false;
                    self.first_failure.get_or_insert(why);
                }
            }
        }
        // Spooled in segments of at least BATCH_RECORDS: each costs two
        // fsyncs, and small INSERT batches would make thousands.
        let pending = &mut self.spooling[table as usize];
        pending.0.extend_from_slice(&body);
        pending.1 += n;
        if pending.1 as usize >= BATCH_RECORDS {
            self.spool_pending(table)?;
        }
        Ok(())
    }

    fn spool_pending(&mut self, table: Table) -> io::Result<()> {
        let (body, n) = std::mem::take(&mut self.spooling[table as usize]);
        if n == 0 {
            return Ok(());
        }
        if self.spool.put(table.name(), &body)? {
            self.counts.spooled += n;
        } else {
            self.counts.dropped += n;
        }
        Ok(())
    }
}

impl Sink for ClickHouseSink {
    fn part(&mut self, part: &AuditReport, intel_json: &IntelJsonCache) -> io::Result<()> {
        let records = Records { flows: true, findings: true };
        let mut lines = Lines { sink: self, partial: Vec::new() };
        flows::write_jsonl(part, intel_json, records, &mut lines)
    }

    fn finish(&mut self, _: &AuditRun) -> io::Result<()> {
        for t in Table::ALL {
            self.send(t)?;
            self.spool_pending(t)?;
        }
        Ok(())
    }
}

/// Cuts what the jsonl writer writes into lines for the sink.
struct Lines<'a> {
    sink: &'a mut ClickHouseSink,
    partial: Vec<u8>,
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.sink.line(&rest[..end])?;
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut self.partial);
                self.sink.line(&line)?;
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_flat_with_a_deterministic_id() {
        let record: Value = serde_json::json!({
            "event": {"kind": "alert", "category": ["network"], "start": "2024-03-01T12:00:01Z"},
            "source": {"ip": "10.1.0.5", "port": 50001},
            "destination": {"ip": "203.0.113.10", "port": 443, "as": {"number": 64500}},
            "rule": {"id": "cn-provider", "ruleset": "p"},
            "xborder": {"flow": {"file": "a.pcap", "first_frame": 3, "source": {"tcp_flags": ["SYN", "ACK"]}}},
        });
        let (table, row) = row(&record, "gw1").unwrap();
        assert_eq!(table, Table::Findings);
        assert_eq!(row["destination.as.number"], 64500);
        assert_eq!(row["event.category"], "network");
        assert_eq!(row["xborder.flow.source.tcp_flags"], "SYN ACK");
        assert_eq!(row["day"], "2024-03-01");
        assert_eq!(row["observer.name"], "gw1");
        let (_, again) = super::row(&record, "gw1").unwrap();
        assert_eq!(row["id"], again["id"]);
        let (_, other) = super::row(&record, "gw2").unwrap();
        assert_ne!(row["id"], other["id"]);
        assert!(Table::Findings.ddl("xborder").contains("`rule.id` Nullable(String)"));
        assert!(!Table::Flows.columns().contains(&"rule.id"));
        // Written by a rule that matched with a fact unknown.
        assert!(Table::Findings.columns().contains(&"xborder.finding.unknown"));
    }

    #[test]
    fn a_flow_inside_a_tunnel_keeps_its_chain_as_json() {
        let tunnels = serde_json::json!([
            {"type": "vxlan", "source": {"ip": "192.0.2.50"}, "destination": {"ip": "192.0.2.60"}, "id": 100}
        ]);
        let record = serde_json::json!({
            "event": {"kind": "event", "start": "2024-03-01T12:00:01Z"},
            "xborder": {"flow": {"carries": "gre"}, "tunnels": tunnels},
        });
        let (table, row) = row(&record, "gw1").unwrap();
        assert_eq!(table, Table::Flows);
        assert_eq!(row["xborder.flow.carries"], "gre");
        let chain: Value = serde_json::from_str(row["xborder.tunnels"].as_str().unwrap()).unwrap();
        assert_eq!(chain, tunnels);
        for column in ["xborder.flow.carries", "xborder.tunnels"] {
            assert!(Table::Flows.columns().contains(&column), "{column}");
        }
    }
}

/// Counters of a [`LiveSender`], read by live's statistics.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Records the server took as they came.
    pub sent: AtomicU64,
    /// Records spooled (the server unreachable or refusing).
    pub spooled: AtomicU64,
    /// Spooled records delivered later by a retry.
    pub retried: AtomicU64,
    /// Records lost: the queue to the sender was full, or the spool at its
    /// bound.
    pub dropped: AtomicU64,
}

/// Live's records to ClickHouse from a thread of their own: batches of
/// [`BATCH_RECORDS`] or one second's records; when the server cannot
/// take them they are spooled (in segments of a minute's records or
/// [`BATCH_RECORDS`] while it stays down) and the spool retried with
/// backoff (1 s doubling to 60 s); at the end (the queue closed) what is left is sent
/// or spooled and one more delivery of the spool is tried. The capture
/// and analysis never wait on it: a full queue drops (counted).
pub struct LiveSender {
    queue: std::sync::mpsc::SyncSender<Vec<u8>>,
    pub counters: Arc<LiveCounters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Records queued to the sender at most.
const LIVE_QUEUE: usize = 65_536;

impl LiveSender {
    pub fn start(client: ClickHouse, spool: Spool, observer: String) -> io::Result<Self> {
        let (queue, records) = std::sync::mpsc::sync_channel::<Vec<u8>>(LIVE_QUEUE);
        let counters = Arc::new(LiveCounters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("clickhouse".into())
            .spawn(move || live_loop(client, spool, observer, &records, &c))?;
        Ok(Self { queue, counters, thread: Some(thread) })
    }

    /// Queues one jsonl record (a flow or an alert); never waits.
    pub fn record(&self, line: Vec<u8>) {
        if self.queue.try_send(line).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends what is left and waits for the thread.
    pub fn finish(mut self) {
        let (queue, _) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.queue, queue));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn live_loop(
    client: ClickHouse,
    mut spool: Spool,
    observer: String,
    records: &std::sync::mpsc::Receiver<Vec<u8>>,
    c: &LiveCounters,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut batches: [(Vec<u8>, u64); 2] = [(Vec::new(), 0), (Vec::new(), 0)];
    let mut oldest: Option<std::time::Instant> = None;
    // Down until this instant (then the spool is retried).
    let mut down: Option<(std::time::Instant, Duration)> = None;
    let send = |batches: &mut [(Vec<u8>, u64); 2],
                down: &mut Option<(std::time::Instant, Duration)>,
                spool: &mut Spool| {
        for t in Table::ALL {
            let (body, n) = std::mem::take(&mut batches[t as usize]);
            if n == 0 {
                continue;
            }
            if down.is_none() {
                match client.insert(t, &body) {
                    Ok(()) => {
                        c.sent.fetch_add(n, Ordering::Relaxed);
                        continue;
                    }
                    Err(_) => {
                        *down = Some((
                            std::time::Instant::now() + Duration::from_secs(1),
                            Duration::from_secs(1),
                        ))
                    }
                }
            }
            match spool.put(t.name(), &body) {
                Ok(true) => c.spooled.fetch_add(n, Ordering::Relaxed),
                _ => c.dropped.fetch_add(n, Ordering::Relaxed),
            };
        }
    };
    let retry =
        |down: &mut Option<(std::time::Instant, Duration)>, spool: &mut Spool, last: bool| {
            let Some((at, backoff)) = *down else { return };
            if !last && std::time::Instant::now() < at {
                return;
            }
            let (counts, result) = client.flush(spool);
            c.retried.fetch_add(counts.records, Ordering::Relaxed);
            // Refused by the server: set aside, not delivered.
            c.dropped.fetch_add(counts.rejected, Ordering::Relaxed);
            match result {
                Ok(()) => *down = None,
                Err(_) => {
                    let next = (backoff * 2).min(Duration::from_secs(60));
                    *down = Some((std::time::Instant::now() + next, next));
                }
            }
        };
    loop {
        let closed = match records.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let record: Option<Value> = serde_json::from_slice(&line).ok();
                let mut row = Vec::with_capacity(line.len() + 128);
                if let Some(t) = record.and_then(|r| write_row(&r, &observer, &mut row)) {
                    let b = &mut batches[t as usize];
                    b.0.extend_from_slice(&row);
                    b.0.push(b'\n');
                    b.1 += 1;
                    oldest.get_or_insert_with(std::time::Instant::now);
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let full = batches.iter().any(|b| b.1 as usize >= BATCH_RECORDS);
        // While the server is down the records gather for a minute (or
        // BATCH_RECORDS) per spool segment: one segment a second would be
        // tens of thousands a day, each an INSERT when it comes back.
        let age = if down.is_some() { Duration::from_secs(60) } else { Duration::from_secs(1) };
        let old = oldest.is_some_and(|o| o.elapsed() >= age);
        if full || old || closed {
            send(&mut batches, &mut down, &mut spool);
            oldest = None;
        }
        retry(&mut down, &mut spool, closed);
        if closed {
            return;
        }
    }
}
