//! Shell completions and manual pages, generated from the same clap
//! definitions as `--help`.

use std::process::Command;

fn xborder(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xborder")).args(args).output().unwrap()
}

#[test]
fn completions_for_each_shell_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = xborder(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        // fish writes options without their dashes (`-l geoip-country`).
        for sub in ["audit", "lookup", "live", "rules", "db", "geoip-country", "format"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    // bash reads the script without a syntax error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xborder.bash");
    std::fs::write(&path, xborder(&["completions", "bash"]).stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(check.success());
    let out = xborder(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = xborder(&["man", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for page in ["xborder.1", "xborder-audit.1", "xborder-live.1", "xborder-rules-check.1"] {
        assert!(pages.iter().any(|p| p == page), "{page} missing: {pages:?}");
    }
    let audit = std::fs::read_to_string(dir.path().join("xborder-audit.1")).unwrap();
    assert!(audit.starts_with(".ie \\n(.g .ds Aq") || audit.contains(".TH"), "{audit}");
    assert!(audit.contains("\\-\\-fail\\-on"), "{audit}");
}
