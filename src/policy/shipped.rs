//! The rule packs in `rules/`, compiled in: the default policy.

use std::path::Path;

use super::{Diagnostic, Policy, PolicyError};
use crate::intel::ProviderCatalogue;

/// (file name, text) of every shipped pack.
pub const PACKS: [(&str, &str); 4] = [
    ("us-foreign-adversaries.toml", include_str!("../../rules/us-foreign-adversaries.toml")),
    ("eu-third-countries.toml", include_str!("../../rules/eu-third-countries.toml")),
    ("ofac-comprehensive.toml", include_str!("../../rules/ofac-comprehensive.toml")),
    ("cn-ru-cloud-providers.toml", include_str!("../../rules/cn-ru-cloud-providers.toml")),
];

/// The shipped packs, checked against `providers`.
pub fn policy(providers: &ProviderCatalogue) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let mut policy = Policy::default();
    let mut warnings = Vec::new();
    for (file, text) in PACKS {
        let path = Path::new("rules").join(file);
        let location = Some(format!("embedded rules/{file}"));
        policy.add_text(text, &path, location, providers, &mut warnings)?;
    }
    Ok((policy, warnings))
}
