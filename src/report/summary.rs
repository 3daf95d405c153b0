//! The terminal summary of an audit run: inputs, packets, flows, bytes,
//! anomalies, unsupported link types and the top remote endpoints.

use std::cmp::Ordering;
use std::fmt::Write;
use std::net::IpAddr;

use super::digest::RemoteTotals;
use super::AuditReport;
use crate::flow::protocol_name;

/// How many remote endpoints the summary lists.
pub const TOP_REMOTES: usize = 10;

pub use crate::units::{grouped, human_bytes};

/// Renders the summary as plain text.
pub fn render(report: &AuditReport) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_summary(report, &mut s);
    s
}

fn write_summary(r: &AuditReport, s: &mut String) -> std::fmt::Result {
    if let Some(live) = &r.live {
        let st = &live.stats;
        writeln!(
            s,
            "xborder live on {}: {} .. {}{}",
            live.interface,
            live.start,
            live.end,
            if live.last { " (final report)" } else { "" }
        )?;
        writeln!(
            s,
            "Capture    {} received, dropped: {} by the kernel, {} by the interface, {} by xborder",
            grouped(st.received),
            grouped(st.kernel_dropped),
            grouped(st.interface_dropped),
            grouped(st.queue_dropped)
        )?;
        writeln!(
            s,
            "           {} flows alive, {} evicted early; {} alerts ({} dropped)",
            grouped(st.live_flows),
            grouped(st.evicted_flows),
            grouped(st.alerts),
            grouped(st.alerts_dropped)
        )?;
        if st.evidence_packets + st.evidence_dropped > 0 {
            writeln!(
                s,
                "           evidence: {} packets kept, {} dropped",
                grouped(st.evidence_packets),
                grouped(st.evidence_dropped)
            )?;
        }
        if let Some(store) = &st.store {
            writeln!(
                s,
                "           clickhouse: {} records sent, {} spooled, {} retried, {} dropped",
                grouped(store.sent),
                grouped(store.spooled),
                grouped(store.retried),
                grouped(store.dropped)
            )?;
        }
        writeln!(s, "Flows that ended in this period:")?;
    }
    let failed = r.inputs.iter().filter(|i| i.error.is_some()).count();
    writeln!(
        s,
        "xborder audit: {} input{}{}",
        r.inputs.len(),
        plural(r.inputs.len() as u64),
        if failed > 0 { format!(", {failed} with errors") } else { String::new() }
    )?;
    for input in &r.inputs {
        let format = input.format.map_or("-", |f| match f {
            crate::capture::CaptureFormat::Pcap => "pcap",
            crate::capture::CaptureFormat::Pcapng => "pcapng",
        });
        write!(s, "  {}  {format}  {} packets", input.path.display(), grouped(input.packets))?;
        if input.error.is_some() {
            write!(s, "  (error, see above)")?;
        }
        writeln!(s)?;
    }
    if !r.skipped.is_empty() {
        writeln!(
            s,
            "  {} file{} skipped (not captures)",
            r.skipped.len(),
            plural(r.skipped.len() as u64)
        )?;
    }
    let t = &r.totals;
    writeln!(s)?;
    if let Some(observer) = &r.observer {
        writeln!(s, "Observer   {observer}")?;
    }
    if let (Some(first), Some(last)) = (t.first, t.last) {
        writeln!(s, "Time       {first} .. {last}")?;
    }
    let unsupported: u64 = r.unsupported_link_types.values().sum();
    writeln!(
        s,
        "Packets    {} (IP {}, non-IP {}, unsupported link type {}, malformed {})",
        grouped(t.packets),
        grouped(t.ip_packets),
        grouped(t.non_ip),
        grouped(unsupported),
        grouped(t.malformed)
    )?;
    if t.cut_by_snaplen > 0 {
        writeln!(s, "           {} cut by the snapshot length", grouped(t.cut_by_snaplen))?;
    }
    let mut by_proto = r.digest.by_protocol.clone();
    by_proto.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let protos: Vec<String> = by_proto
        .iter()
        .map(|(p, n)| {
            format!(
                "{} {}",
                protocol_name(*p).map_or_else(|| p.to_string(), str::to_owned),
                grouped(*n)
            )
        })
        .collect();
    writeln!(
        s,
        "Flows      {}{}",
        grouped(r.digest.flows),
        if protos.is_empty() { String::new() } else { format!(" ({})", protos.join(", ")) }
    )?;
    if r.peak_live_flows > 0 {
        writeln!(s, "           at most {} alive at once", grouped(r.peak_live_flows as u64))?;
    }
    if r.evicted_flows > 0 && r.live.is_none() {
        writeln!(
            s,
            "           {} ended early: more than --max-flows alive at once",
            grouped(r.evicted_flows)
        )?;
    }
    writeln!(s, "Bytes      {} at the IP layer", human_bytes(r.digest.bytes))?;

    if r.anomalies.total() > 0 {
        writeln!(s, "\nAnomalies  {}", grouped(r.anomalies.total()))?;
        for (kind, n, frames) in r.anomalies.iter() {
            let at: Vec<String> =
                frames.iter().map(|f| format!("{}#{}", file_name(r, f.file), f.frame)).collect();
            writeln!(s, "  {:<44} {:>8}  first: {}", kind.description(), grouped(n), at.join(" "))?;
        }
    }
    if !r.unsupported_link_types.is_empty() {
        writeln!(s, "\nUnsupported link types (packets not decoded)")?;
        for (lt, n) in &r.unsupported_link_types {
            writeln!(s, "  link type {:<5} {:>8} packets", lt.0, grouped(*n))?;
        }
    }
    write_top_remotes(r, s)
}

fn write_top_remotes(r: &AuditReport, s: &mut String) -> std::fmt::Result {
    let remotes = &r.digest.remotes;
    if remotes.is_empty() {
        return Ok(());
    }
    let mut top: Vec<(&IpAddr, &RemoteTotals)> = remotes.iter().collect();
    sort_first(&mut top, TOP_REMOTES, |a, b| {
        (b.1.bytes_out + b.1.bytes_in).cmp(&(a.1.bytes_out + a.1.bytes_in)).then(a.0.cmp(b.0))
    });
    let in_all = if r.digest.remotes_forgotten > 0 {
        // Past the digest's bound the lighter endpoints were forgotten: at
        // least one more than are tracked.
        format!("more than {}", grouped(top.len() as u64))
    } else {
        grouped(top.len() as u64)
    };
    writeln!(s, "\nTop remote endpoints by bytes ({in_all} in all; out = sent to them)")?;
    let shown = &top[..top.len().min(TOP_REMOTES)];
    let width = shown.iter().map(|(ip, _)| ip.to_string().len()).max().unwrap_or(6).max(6);
    let with_intel = remotes.values().any(|t| t.intel.is_some());
    write!(s, "  {:<width$} {:>6} {:>9} {:>9}", "remote", "flows", "out", "in")?;
    if with_intel {
        write!(s, "  where  provider (law)")?;
    }
    writeln!(s)?;
    for (ip, t) in shown {
        write!(
            s,
            "  {:<width$} {:>6} {:>9} {:>9}",
            ip.to_string(),
            grouped(t.flows),
            human_bytes(t.bytes_out),
            human_bytes(t.bytes_in)
        )?;
        if let Some(i) = &t.intel {
            let country = i.country.map_or("--".to_owned(), |c| c.to_string());
            let provider = match (&i.provider_name, i.jurisdiction) {
                (Some(name), Some(j)) => format!("{name} ({j})"),
                (Some(name), None) => name.to_string(),
                _ => i.as_org.as_deref().map_or_else(String::new, |o| format!("[{o}]")),
            };
            write!(s, "  {country:<5}  {provider}")?;
        }
        writeln!(s)?;
    }
    Ok(())
}

/// Puts the first `n` items of `v` by `order` (a total order) first, in
/// that order, as a full sort would; the rest stay in no order. A report
/// shows a few of up to 100,000 endpoints: this does not sort them all.
pub(crate) fn sort_first<T>(v: &mut [T], n: usize, mut order: impl FnMut(&T, &T) -> Ordering) {
    if n > 0 && v.len() > n {
        v.select_nth_unstable_by(n - 1, &mut order);
        v[..n].sort_by(order);
    } else {
        v.sort_by(order);
    }
}

fn file_name(r: &AuditReport, index: u32) -> String {
    let p = r.input_path(index);
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sort_first_puts_the_first_items_of_a_full_sort_first() {
        let items: Vec<u32> = (0..1000).map(|i| (i * 7919) % 1000).collect();
        for n in [0, 1, 10, 999, 1000, 2000] {
            let mut v = items.clone();
            super::sort_first(&mut v, n, |a, b| b.cmp(a));
            let mut full = items.clone();
            full.sort_by(|a, b| b.cmp(a));
            let k = n.clamp(1, 1000).min(v.len());
            assert_eq!(v[..k], full[..k], "n = {n}");
        }
    }
}
