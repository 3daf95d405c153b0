//! Reading a rule pack: the TOML document walked with its spans, so that
//! every message names the line and column of the value it is about, and
//! every error in a file is reported at once.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Level, SourceFile};
use super::{Catalogues, Conditions, Rule, RulePack, Severity, WhenUnknown, TESTED_FACTS};
use crate::flow::{protocol_has_ports, protocol_name, Direction};
use crate::intel::{CountryCode, CountryList};

type Value<'i> = Spanned<DeValue<'i>>;

const PACK_FIELDS: &[&str] = &["name", "description", "source", "reference", "version"];
const RULE_FIELDS: &[&str] =
    &["id", "title", "severity", "description", "when_unknown", "enabled", "match", "unless"];
/// A block's fields besides the facts of the intelligence and the vendor
/// ([`TESTED_FACTS`], which come first).
const PLAIN_CONDITION_FIELDS: &[&str] = &[
    "cidr",
    "domain_suffix",
    "transport",
    "remote_port",
    "direction",
    "min_bytes_out",
    "local_network",
    "local_host",
];

struct Walker<'a> {
    src: SourceFile<'a>,
    catalogues: Catalogues<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// Parses `text`; the pack is `None` when it could not be read at all.
pub(super) fn parse_pack(
    text: &str,
    path: &Path,
    catalogues: Catalogues<'_>,
) -> (Option<RulePack>, Vec<Diagnostic>) {
    let mut w = Walker { src: SourceFile::new(path, text), catalogues, diagnostics: Vec::new() };
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            w.error(span, e.message().trim_end().to_owned());
        }
        return (None, w.diagnostics);
    }
    let pack = w.pack(doc.get_ref(), doc.span());
    (pack, w.diagnostics)
}

impl Walker<'_> {
    fn error(&mut self, span: Range<usize>, message: String) {
        self.diagnostics.push(self.src.at(span, Level::Error, message));
    }

    fn warn(&mut self, span: Range<usize>, message: String) {
        self.diagnostics.push(self.src.at(span, Level::Warning, message));
    }

    /// Reports keys of `table` not in `allowed`.
    fn known_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], place: &str) {
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let message = format!(
                    "unknown field `{}` in {place}; expected one of: {}",
                    key.get_ref(),
                    allowed.join(", ")
                );
                self.error(key.span(), message);
            }
        }
    }

    fn get<'t, 'i>(&self, table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
        table.get(key)
    }

    /// A required field.
    fn required<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        key: &str,
        span: &Range<usize>,
        place: &str,
    ) -> Option<&'t Value<'i>> {
        let v = table.get(key);
        if v.is_none() {
            self.error(span.clone(), format!("{place} has no `{key}`"));
        }
        v
    }

    fn string(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(v.span(), format!("{what}: expected a string, found {}", kind(other)));
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        span: &Range<usize>,
        place: &str,
    ) -> Option<String> {
        let v = self.required(table, key, span, place)?;
        let s = self.string(v, &format!("`{key}`"))?;
        if s.trim().is_empty() {
            self.error(v.span(), format!("`{key}` is empty"));
            return None;
        }
        Some(s)
    }

    fn pack(&mut self, doc: &DeTable<'_>, span: Range<usize>) -> Option<RulePack> {
        self.known_keys(doc, &["pack", "rule"], "a rule pack");
        let head = self.required(doc, "pack", &span, "the file")?;
        let head_span = head.span();
        let head = self.table(head, "`pack`")?;
        self.known_keys(head, PACK_FIELDS, "[pack]");
        let name = self.required_string(head, "name", &head_span, "[pack]");
        if let (Some(n), Some(v)) = (&name, head.get("name")) {
            if !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                self.error(
                    v.span(),
                    format!("pack name \"{n}\": use letters, digits, '-' and '_' only"),
                );
            }
        }
        let description = self.required_string(head, "description", &head_span, "[pack]");
        let source = self.required_string(head, "source", &head_span, "[pack]");
        let version = self.required_string(head, "version", &head_span, "[pack]");
        let reference = self.get(head, "reference").and_then(|v| self.string(v, "`reference`"));

        let mut rules: Vec<Rule> = Vec::new();
        // Id → where it is first given: a pack may hold 100,000 rules.
        let mut ids: HashMap<String, Range<usize>> = HashMap::new();
        match self.get(doc, "rule") {
            None => self.warn(span, "the pack has no rules ([[rule]])".into()),
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        let Some(rule) = self.rule(item) else { continue };
                        let id_span = self
                            .table(item, "")
                            .and_then(|t| t.get("id"))
                            .map_or(item.span(), |v| v.span());
                        if let Some(first) = ids.get(&rule.id) {
                            let line = self.src.at(first.clone(), Level::Error, String::new()).line;
                            self.error(
                                id_span,
                                format!("rule id \"{}\" is already used on line {line}", rule.id),
                            );
                            continue;
                        }
                        ids.insert(rule.id.clone(), id_span);
                        rules.push(rule);
                    }
                }
                other => self.error(
                    v.span(),
                    format!(
                        "`rule`: expected an array of tables ([[rule]]), found {}",
                        kind(other)
                    ),
                ),
            },
        }
        Some(RulePack {
            name: name?,
            description: description?,
            source: source?,
            reference,
            version: version?,
            location: String::new(),
            sha256: String::new(),
            rules,
        })
    }

    fn table<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                if !what.is_empty() {
                    self.error(
                        v.span(),
                        format!("{what}: expected a table, found {}", kind(other)),
                    );
                }
                None
            }
        }
    }

    fn rule(&mut self, item: &Value<'_>) -> Option<Rule> {
        let span = item.span();
        let t = self.table(item, "[[rule]]")?;
        self.known_keys(t, RULE_FIELDS, "[[rule]]");
        let id = self.required_string(t, "id", &span, "a [[rule]]");
        let place = match &id {
            Some(id) => format!("rule \"{id}\""),
            None => "a [[rule]]".to_owned(),
        };
        let title = self.required_string(t, "title", &span, &place);
        let severity = self.required(t, "severity", &span, &place).and_then(|v| {
            let s = self.string(v, "`severity`")?;
            let parsed = Severity::parse(&s);
            if parsed.is_none() {
                self.error(
                    v.span(),
                    format!("bad severity \"{s}\" (expected info, low, medium, high or critical)"),
                );
            }
            parsed
        });
        let description = t.get("description").and_then(|v| self.string(v, "`description`"));
        let enabled = match t.get("enabled") {
            None => true,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                other => {
                    self.error(
                        v.span(),
                        format!("`enabled`: expected true or false, found {}", kind(other)),
                    );
                    true
                }
            },
        };
        let when_unknown = t.get("when_unknown").and_then(|v| {
            let s = self.string(v, "`when_unknown`")?;
            match s.as_str() {
                "match" => Some((WhenUnknown::Match, v.span())),
                "ignore" => Some((WhenUnknown::Ignore, v.span())),
                _ => {
                    self.error(
                        v.span(),
                        format!("bad when_unknown \"{s}\" (expected \"match\" or \"ignore\")"),
                    );
                    None
                }
            }
        });
        let matches = match self.required(t, "match", &span, &place) {
            Some(v) => {
                let block = self.table(v, "`match`").map(|m| self.conditions(m, "[rule.match]"));
                if let Some(b) = &block {
                    self.check_block(b, v.span(), &place);
                }
                block
            }
            None => None,
        };
        let unless = match t.get("unless") {
            None => Vec::new(),
            Some(v) => match v.get_ref() {
                DeValue::Table(u) => vec![self.conditions(u, "[rule.unless]")],
                DeValue::Array(items) => {
                    let mut blocks = Vec::new();
                    for item in items.iter() {
                        if let Some(u) = self.table(item, "[[rule.unless]]") {
                            blocks.push(self.conditions(u, "[[rule.unless]]"));
                        }
                    }
                    blocks
                }
                other => {
                    self.error(
                        v.span(),
                        format!("`unless`: expected a table or tables, found {}", kind(other)),
                    );
                    Vec::new()
                }
            },
        };
        let matches = matches?;
        let when_unknown = match (matches.tests_intel(), when_unknown) {
            (true, None) => {
                self.error(
                    span,
                    format!(
                        "{place} tests hosting country, jurisdiction, provider, service, region, \
                         ASN or vendor: say what to do when that is unknown with \
                         when_unknown = \"match\" or \"ignore\""
                    ),
                );
                None
            }
            (false, Some((_, s))) => {
                self.warn(
                    s,
                    format!(
                        "{place}: when_unknown has no effect: the rule tests no hosting country, \
                         jurisdiction, provider, service, region, ASN or vendor"
                    ),
                );
                None
            }
            (_, w) => w.map(|(w, _)| w),
        };
        Some(Rule {
            id: id?,
            title: title?,
            severity: severity?,
            description,
            when_unknown,
            enabled,
            matches,
            unless,
        })
    }

    /// Warnings about a `match` block that can never (or always) hold.
    fn check_block(&mut self, c: &Conditions, span: Range<usize>, place: &str) {
        let never = |what: &str| format!("{place} can never match: {what}");
        if *c == Conditions::default() {
            self.warn(span.clone(), format!("{place}: an empty match matches every flow"));
        }
        if c.tests_intel() && c.direction.as_ref().is_some_and(|d| d == &[Direction::Internal]) {
            self.warn(span.clone(), never("internal flows have no remote endpoint to look up"));
        }
        if c.remote_port.is_some()
            && c.transport.as_ref().is_some_and(|t| !t.iter().any(|p| protocol_has_ports(*p)))
        {
            self.warn(span.clone(), never("remote_port with transports that have no ports"));
        }
        if let (Some(providers), Some(jurisdictions)) = (&c.provider, &c.jurisdiction) {
            let catalogue = self.catalogues.providers;
            let any = providers.iter().any(|id| {
                catalogue
                    .index_of(id)
                    .and_then(|i| catalogue.get(i))
                    .is_some_and(|p| jurisdictions.contains(&p.jurisdiction))
            });
            if !any {
                self.warn(
                    span,
                    never("none of its providers has one of its jurisdictions in the catalogue"),
                );
            }
        }
    }

    fn conditions(&mut self, t: &DeTable<'_>, place: &str) -> Conditions {
        let fields: Vec<&str> =
            TESTED_FACTS.iter().chain(PLAIN_CONDITION_FIELDS).copied().collect();
        self.known_keys(t, &fields, place);
        let mut c = Conditions {
            hosting_country: self.list(t, "hosting_country", Self::country).map(CountryList::from),
            jurisdiction: self.list(t, "jurisdiction", Self::country).map(CountryList::from),
            provider: self.list(t, "provider", Self::provider),
            service: self.list(t, "service", Self::plain),
            region: self.list(t, "region", Self::plain),
            asn: self.list(t, "asn", Self::asn),
            vendor: self.list(t, "vendor", Self::vendor),
            vendor_jurisdiction: self
                .list(t, "vendor_jurisdiction", Self::country)
                .map(CountryList::from),
            cidr: self.list(t, "cidr", Self::cidr),
            domain_suffix: self.list(t, "domain_suffix", Self::domain),
            transport: self.list(t, "transport", Self::transport),
            remote_port: self.list(t, "remote_port", Self::port_range),
            direction: self.list(t, "direction", Self::direction),
            min_bytes_out: t.get("min_bytes_out").and_then(|v| self.integer(v, "`min_bytes_out`")),
            local: None,
        };
        let nets = self.list(t, "local_network", Self::cidr);
        let hosts = self.list(t, "local_host", Self::host);
        if nets.is_some() || hosts.is_some() {
            c.local = Some(nets.into_iter().chain(hosts).flatten().collect());
        }
        c
    }

    /// A field holding one value or an array of values; `None` when absent
    /// (or entirely wrong). An empty array is kept: it never holds.
    fn list<T>(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        one: fn(&mut Self, &Value<'_>, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = t.get(key)?;
        let what = format!("`{key}`");
        match v.get_ref() {
            DeValue::Array(items) => {
                if items.is_empty() {
                    self.warn(
                        v.span(),
                        format!("`{key}` is an empty list: the block can never hold"),
                    );
                }
                Some(items.iter().filter_map(|i| one(self, i, &what)).collect())
            }
            _ => one(self, v, &what).map(|x| vec![x]),
        }
    }

    fn plain(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        self.string(v, what)
    }

    fn integer(&mut self, v: &Value<'_>, what: &str) -> Option<u64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                let n = u64::from_str_radix(i.as_str(), i.radix()).ok();
                if n.is_none() {
                    self.error(v.span(), format!("{what}: expected a number of 0 or more"));
                }
                n
            }
            other => {
                self.error(v.span(), format!("{what}: expected an integer, found {}", kind(other)));
                None
            }
        }
    }

    fn country(&mut self, v: &Value<'_>, what: &str) -> Option<CountryCode> {
        let s = self.string(v, what)?;
        CountryCode::parse_assigned(&s).map_err(|message| self.error(v.span(), message)).ok()
    }

    fn provider(&mut self, v: &Value<'_>, what: &str) -> Option<Arc<str>> {
        let s = self.string(v, what)?;
        let catalogue = self.catalogues.providers;
        if catalogue.index_of(&s).is_some() {
            return Some(Arc::from(s));
        }
        let ids = catalogue.providers().iter().map(|p| &*p.id);
        let hint = did_you_mean(&s, ids, "`xborder lookup` and geoip/providers.toml list the ids");
        self.error(v.span(), format!("unknown provider id \"{s}\"{hint}"));
        None
    }

    fn vendor(&mut self, v: &Value<'_>, what: &str) -> Option<Arc<str>> {
        let s = self.string(v, what)?;
        let catalogue = self.catalogues.vendors;
        if catalogue.index_of(&s).is_some() {
            return Some(Arc::from(s));
        }
        let ids = catalogue.vendors().iter().map(|v| v.id.as_str());
        let hint = did_you_mean(&s, ids, "geoip/vendors.toml lists the ids");
        self.error(v.span(), format!("unknown vendor id \"{s}\"{hint}"));
        None
    }

    fn asn(&mut self, v: &Value<'_>, what: &str) -> Option<u32> {
        let n = match v.get_ref() {
            DeValue::String(s) => {
                let digits = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")).unwrap_or(s);
                digits.parse::<u64>().ok()
            }
            DeValue::Integer(_) => self.integer(v, what),
            other => {
                self.error(v.span(), format!("{what}: expected an ASN, found {}", kind(other)));
                return None;
            }
        };
        let asn = n.and_then(|n| u32::try_from(n).ok());
        if asn.is_none() {
            self.error(v.span(), format!("{what}: not an AS number (e.g. 4134 or \"AS4134\")"));
        }
        asn
    }

    fn cidr(&mut self, v: &Value<'_>, what: &str) -> Option<IpNet> {
        let s = self.string(v, what)?;
        let net =
            s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from));
        match net {
            Some(n) if n.trunc() != n => {
                self.warn(v.span(), format!("\"{s}\" has host bits set; it means {}", n.trunc()));
                Some(n.trunc())
            }
            Some(n) => Some(n),
            None => {
                self.error(
                    v.span(),
                    format!("bad CIDR \"{s}\" (expected an address or address/prefix, e.g. 203.0.113.0/24)"),
                );
                None
            }
        }
    }

    fn host(&mut self, v: &Value<'_>, what: &str) -> Option<IpNet> {
        let s = self.string(v, what)?;
        match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(IpNet::from(ip)),
            Err(_) => {
                self.error(
                    v.span(),
                    format!("bad address \"{s}\" (expected an IP address; networks go in local_network)"),
                );
                None
            }
        }
    }

    fn domain(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        let s = self.string(v, what)?;
        let d = s.trim_matches('.').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            && !d.contains("..");
        if !ok {
            self.error(v.span(), format!("bad domain suffix \"{s}\" (e.g. \"aliyuncs.com\")"));
            return None;
        }
        Some(d)
    }

    fn transport(&mut self, v: &Value<'_>, what: &str) -> Option<u8> {
        if let DeValue::Integer(_) = v.get_ref() {
            let n = self.integer(v, what)?;
            let p = u8::try_from(n).ok();
            if p.is_none() {
                self.error(v.span(), format!("{what}: IP protocol numbers go up to 255"));
            }
            return p;
        }
        let s = self.string(v, what)?;
        let p = (0..=255u8).find(|p| protocol_name(*p) == Some(s.as_str()));
        if p.is_none() {
            self.error(
                v.span(),
                format!("unknown transport \"{s}\" (e.g. tcp, udp, icmp, ipv6-icmp, or a protocol number)"),
            );
        }
        p
    }

    fn port_range(&mut self, v: &Value<'_>, what: &str) -> Option<(u16, u16)> {
        let parse = |s: &str| s.trim().parse::<u16>().ok();
        let range = match v.get_ref() {
            DeValue::Integer(_) => {
                let n = self.integer(v, what)?;
                u16::try_from(n).ok().map(|p| (p, p))
            }
            DeValue::String(s) => match s.split_once('-') {
                Some((lo, hi)) => parse(lo).zip(parse(hi)).filter(|(lo, hi)| lo <= hi),
                None => parse(s).map(|p| (p, p)),
            },
            other => {
                self.error(v.span(), format!("{what}: expected a port, found {}", kind(other)));
                return None;
            }
        };
        if range.is_none() {
            self.error(
                v.span(),
                format!("{what}: expected a port (0-65535) or a range \"8000-8100\""),
            );
        }
        range
    }

    fn direction(&mut self, v: &Value<'_>, what: &str) -> Option<Direction> {
        let s = self.string(v, what)?;
        let d = [Direction::Outbound, Direction::Inbound, Direction::Internal, Direction::External]
            .into_iter()
            .find(|d| d.as_str() == s);
        if d.is_none() {
            self.error(
                v.span(),
                format!("bad direction \"{s}\" (expected outbound, inbound, internal or external)"),
            );
        }
        d
    }
}

/// " (did you mean a, b?)" with up to three ids that contain the value, are
/// contained in it or are spelt alike (a typo), else " (`where_`)".
fn did_you_mean<'a>(value: &str, ids: impl Iterator<Item = &'a str>, where_: &str) -> String {
    let lower = value.to_ascii_lowercase();
    let similar: Vec<&str> = ids
        .filter(|id| {
            id.contains(lower.as_str())
                || lower.contains(*id)
                || strsim::jaro_winkler(&lower, id) >= 0.9
        })
        .take(3)
        .collect();
    if similar.is_empty() {
        format!(" ({where_})")
    } else {
        format!(" (did you mean {}?)", similar.join(", "))
    }
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
