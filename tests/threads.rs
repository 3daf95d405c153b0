//! The same answers with one thread and with several (issue 15, item 6):
//! every report format, the flow records and the evidence are byte for
//! byte the same whatever `--threads` says, on every corpus capture and
//! on generated gateway traffic of several parts (DNS answers seen by one
//! shard name the flows of another; sweeps, tunnels, names, findings),
//! also when the traffic is split over rotated files.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn audit(threads: &str, args: &[&str], inputs: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xborder"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["audit", "--quiet", "--fail-on", "none", "--threads", threads])
        .args(args)
        .args(inputs)
        .output()
        .unwrap()
}

/// Runs `args` on `inputs` on one core (`--threads 1`: one shard, on the
/// reader's thread, and no spare core at the end), on two (one shard,
/// the finishing stage on its own core) and with two and three shards
/// (`--threads 4` and `5`, more threads than CI's cores): the same output
/// and status each time. Returns the output of one thread.
fn same_with_any_threads(what: &str, args: &[&str], inputs: &[PathBuf]) -> Output {
    let one = audit("1", args, inputs);
    for threads in ["2", "4", "5"] {
        let more = audit(threads, args, inputs);
        assert_eq!(one.status.code(), more.status.code(), "{what} {args:?}: status");
        if one.stdout != more.stdout {
            let (a, b) =
                (String::from_utf8_lossy(&one.stdout), String::from_utf8_lossy(&more.stdout));
            let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
            panic!(
                "{what} {args:?}: --threads {threads} differs from --threads 1 at line {line:?}:\n{}\n---\n{}",
                line.and_then(|l| a.lines().nth(l)).unwrap_or(""),
                line.and_then(|l| b.lines().nth(l)).unwrap_or(""),
            );
        }
    }
    one
}

#[test]
fn corpus_captures_give_the_same_answers_with_any_threads() {
    let Some(dir) = support::shared_data("XBORDER_CORPUS", "corpus", "MANIFEST.tsv") else {
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let input = [dir.join(file)];
        same_with_any_threads(file, &["--format", "jsonl", "--flows"], &input);
        same_with_any_threads(file, &["--format", "text"], &input);
    }
}

/// Writes the first `split` records of the pcap at `from` to `a` and the
/// rest to `b` (rotated capture files).
fn split_pcap(from: &Path, split: usize, a: &Path, b: &Path) {
    let data = std::fs::read(from).unwrap();
    let (header, mut rest) = data.split_at(24);
    let (mut first, mut second) = (header.to_vec(), header.to_vec());
    let mut n = 0;
    while rest.len() >= 16 {
        let caplen = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (record, tail) = rest.split_at(16 + caplen);
        if n < split { &mut first } else { &mut second }.extend_from_slice(record);
        rest = tail;
        n += 1;
    }
    std::fs::write(a, first).unwrap();
    std::fs::write(b, second).unwrap();
}

#[test]
fn gateway_traffic_gives_the_same_answers_with_any_threads() {
    let dir = tempfile::tempdir().unwrap();
    for vxlan in [false, true] {
        // Thirteen periods of 16,384 packets: DNS answers and the flows
        // they name fall in different periods and shards.
        let path = dir.path().join(if vxlan { "vxlan.pcap" } else { "gateway.pcap" });
        let out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        support::traffic::generate(200_000, 20_000, vxlan, out).unwrap();
        let input = [path.clone()];
        let name = path.display().to_string();
        let text = same_with_any_threads(&name, &["--format", "text"], &input);
        assert!(String::from_utf8_lossy(&text.stdout).contains("Findings"));
        same_with_any_threads(&name, &["--format", "jsonl", "--flows"], &input);
        same_with_any_threads(&name, &["--format", "json", "--flows"], &input);
        same_with_any_threads(&name, &["--format", "csv"], &input);
        // The evidence pass replays the shards: the same packets, the same
        // comments.
        let evidence: Vec<Vec<u8>> = ["1", "5"]
            .iter()
            .map(|threads| {
                let file = dir.path().join(format!("evidence-{threads}.pcapng"));
                let evidence = file.to_str().unwrap();
                let out = audit(threads, &["-o", "/dev/null", "--evidence", evidence], &input);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                std::fs::read(&file).unwrap()
            })
            .collect();
        assert!(evidence[0].len() > 100_000, "{} bytes of evidence", evidence[0].len());
        assert!(evidence[0] == evidence[1], "{name}: the evidence differs with 3 shards");

        // Rotated files: a directory of two, read in order through the
        // same shards; a flow across the cut stays one flow.
        let rotated = dir.path().join(if vxlan { "rotated-vxlan" } else { "rotated" });
        std::fs::create_dir(&rotated).unwrap();
        split_pcap(&path, 100_000, &rotated.join("a.pcap"), &rotated.join("b.pcap"));
        let flows = |inputs: &[PathBuf]| {
            let out = same_with_any_threads(&name, &["--format", "jsonl", "--flows"], inputs);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(r#""event":{"kind":"event""#))
                .count()
        };
        assert_eq!(flows(&[rotated]), flows(&input), "{name}: flows across the cut");
    }
}
