//! The rule packs in `rules/`, compiled in: the default policy.

use std::path::Path;

use super::{Catalogues, Diagnostic, Policy, PolicyError};

/// (file name, text) of every shipped pack.
pub const PACKS: [(&str, &str); 5] = [
    ("us-foreign-adversaries.toml", include_str!("../../rules/us-foreign-adversaries.toml")),
    ("eu-third-countries.toml", include_str!("../../rules/eu-third-countries.toml")),
    ("ofac-comprehensive.toml", include_str!("../../rules/ofac-comprehensive.toml")),
    ("cn-ru-cloud-providers.toml", include_str!("../../rules/cn-ru-cloud-providers.toml")),
    ("us-icts-vendors.toml", include_str!("../../rules/us-icts-vendors.toml")),
];

/// The shipped packs, checked against the catalogues.
pub fn policy(catalogues: Catalogues<'_>) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let mut policy = Policy::default();
    let mut warnings = Vec::new();
    for (file, text) in PACKS {
        let path = Path::new("rules").join(file);
        let location = Some(format!("embedded rules/{file}"));
        policy.add_text(text, &path, location, catalogues, &mut warnings)?;
    }
    Ok((policy, warnings))
}
