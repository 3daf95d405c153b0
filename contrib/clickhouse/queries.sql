-- Example questions across gateways. FINAL merges records sent twice
-- (ReplacingMergeTree on the deterministic id). One query per statement;
-- tests/clickhouse.rs runs each.

-- Local hosts per provider jurisdiction per day, anywhere, with the
-- gateways that saw them.
SELECT day, `xborder.remote.jurisdiction` AS jurisdiction,
       uniqExact(`xborder.finding.local_ip`) AS local_hosts,
       groupUniqArray(`observer.name`) AS observers
FROM xborder.findings FINAL
WHERE `xborder.finding.severity` != 'info'
GROUP BY day, jurisdiction
ORDER BY day, jurisdiction;

-- Bytes out per provider per observer (flows, whether flagged or not).
SELECT `observer.name` AS observer, `xborder.remote.provider` AS provider,
       sum(if(`xborder.flow.remote` = 'destination', `source.bytes`, `destination.bytes`)) AS bytes_out,
       count() AS flows
FROM xborder.flows FINAL
WHERE provider IS NOT NULL
GROUP BY observer, provider
ORDER BY observer, bytes_out DESC, provider;

-- Top findings: rules by flows and bytes sent, with their packs.
SELECT `rule.ruleset` AS pack, `rule.id` AS rule, count() AS findings,
       sum(`xborder.finding.bytes_out`) AS bytes_out
FROM xborder.findings FINAL
GROUP BY pack, rule
ORDER BY findings DESC, bytes_out DESC, rule
LIMIT 20;

-- Which hosts sent data to providers under CN law this week, and through
-- which gateway.
SELECT `xborder.finding.local_ip` AS host, groupUniqArray(`observer.name`) AS through,
       sum(`xborder.finding.bytes_out`) AS bytes_out
FROM xborder.findings FINAL
WHERE `xborder.remote.jurisdiction` = 'CN' AND day >= today() - 7
GROUP BY host
ORDER BY bytes_out DESC, host;
