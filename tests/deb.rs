//! The Debian package, built, installed on this machine and checked from
//! the installed paths, then purged. Needs root, dpkg and minutes (a
//! release build), so it is `#[ignore]`d in a plain `cargo test`;
//! `scripts/test` runs it when it is root on Debian (CI is).

use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "root, dpkg and a release build: scripts/test runs it"]
fn the_debian_package_installs_runs_and_purges() {
    let root = env!("CARGO_MANIFEST_DIR");
    let deb = ok(&format!("{root}/scripts/deb"), &[]).trim().to_owned();
    assert!(deb.ends_with(".deb"), "{deb}");
    // Listed contents, then installed for real.
    let contents = ok("dpkg-deb", &["--contents", &deb]);
    for path in [
        "./usr/bin/xborder",
        "./usr/share/man/man1/xborder-audit.1",
        "./usr/share/bash-completion/completions/xborder",
        "./usr/share/zsh/vendor-completions/_xborder",
        "./usr/share/fish/vendor_completions.d/xborder.fish",
        "./etc/xborder/config.toml",
        "./etc/default/xborder-live",
        "xborder-live.service",
    ] {
        assert!(contents.contains(path), "{path} is not in the package:\n{contents}");
    }
    ok("dpkg", &["-i", &deb]);
    let result = std::panic::catch_unwind(|| {
        // The service's user and directories.
        ok("getent", &["passwd", "xborder"]);
        assert!(Path::new("/var/lib/xborder/reports").is_dir());
        // The demo from the installed paths: findings, exit 1.
        let out = run(
            "/usr/bin/xborder",
            &[
                "audit",
                "/usr/share/doc/xborder/examples/demo.pcap",
                "--config",
                "/etc/xborder/config.toml",
                "--format",
                "jsonl",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 13);
        // The unit, as systemd reads it.
        let unit = [
            "/lib/systemd/system/xborder-live.service",
            "/usr/lib/systemd/system/xborder-live.service",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the unit is installed");
        let text = std::fs::read_to_string(unit).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/xborder live"), "{text}");
        let verify = run("systemd-analyze", &["verify", unit]);
        assert!(
            verify.status.success(),
            "systemd-analyze verify {unit}:\n{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    });
    ok("dpkg", &["--purge", "xborder"]);
    assert!(!Path::new("/usr/bin/xborder").exists());
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
