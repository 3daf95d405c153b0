//! The committed captures in `fixtures/` are exactly what the builder in
//! `tests/support/fixtures.rs` makes. `XBORDER_WRITE_FIXTURES=1` rewrites
//! them after a deliberate change.

mod support;

use std::path::Path;

#[test]
fn committed_fixtures_match_the_builder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let write = std::env::var_os("XBORDER_WRITE_FIXTURES").is_some();
    let mut stale = Vec::new();
    for (name, bytes) in support::fixtures::all() {
        let path = root.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "fixtures differ from the builder: {stale:?}; run XBORDER_WRITE_FIXTURES=1 cargo test --test fixtures"
    );
}
